/* hb-http-auth.c: who may do what over HTTP (bearer tokens with scopes)
 *
 * The tokens file ([http] tokens-file=, readable by its owner only) has
 * one token a line, `#` comments:
 *
 *   SCOPES SECRET      SCOPES: read, write, ping, comma separated
 *   SECRET             (one field, as before scopes: read,write)
 *
 * A SECRET starting with `$` is a crypt(3) hash of the token (yescrypt,
 * sha512-crypt…, as /etc/shadow keeps them), so a configuration
 * repository need not hold the tokens; any other SECRET is the token.
 * `write` implies `read` and `ping`.
 *
 * What a request needs (hb_http_needed_scope(), the one rule): nothing
 * for GET /health and for a ping URL with the ping key; `read` for GET and
 * HEAD when HTTP serves an address other than loopback; `ping` (or
 * `write`) for the other ping URLs and `write` for every other change
 * once a tokens file is configured. It is decided once, from the
 * headers, before a body is read (hb-http-guards.c), and kept on the
 * message for the endpoints (hb_http_granted()).
 *
 * Tokens are compared as keyed SHA-256 digests (HMAC with a key drawn at
 * start), in time independent of where they differ and of their length.
 * A hash costs milliseconds (that is its point): a token that matched
 * one is remembered by its digest, so a keep-alive client pays it once.
 * Hashes are checked with libxcrypt's crypt_rn(): ASan's interceptor of
 * crypt_r() calls a null pointer with libxcrypt.
 * More than HB_HTTP_AUTH_MAX_FAILURES wrong tokens from one address in a
 * minute, or HB_HTTP_AUTH_MAX_HASHING hashes of unknown tokens in a
 * minute from everyone, and tokens are not checked at all (429) for the
 * rest of that minute, so nobody can keep the main loop hashing. A wrong
 * token is logged (the address, never the token), once a minute per
 * address; every refusal is counted for /metrics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"
#include "hb-config.h"

#include <crypt.h>
#include <string.h>

#define DIGEST_LENGTH 32
#define WINDOW_USEC (60 * G_USEC_PER_SEC)
#define MAX_PEERS 4096
#define MAX_TOKENS 1024
#define MAX_LINE 1024

typedef struct {
  guint  scopes;
  guint8 digest[DIGEST_LENGTH];   /* of a plain token, or of one that matched hash */
  char  *hash;                    /* a crypt(3) hash, or NULL */
  gboolean verified;              /* hash: digest holds the token that matched it */
} Token;

typedef struct {
  gint64 window_start;   /* monotonic µs */
  guint  failures;
  gboolean warned;
} Peer;

struct _HbHttpTokens {
  guint8      key[DIGEST_LENGTH];
  GArray     *tokens;     /* Token */
  GHashTable *peers;      /* address → Peer */
  gsize       short_line; /* the first token of fewer than 16 characters, or 0 */
  gint64      hashing_window;
  guint       hashing;    /* hashes of unknown tokens in this window */
};

/* Split lines of the tokens file: zeroed before they are freed */
typedef char **SecretStrv;

static void
secret_strv_free (SecretStrv strv)
{
  for (gsize i = 0; strv && strv[i]; i++)
    explicit_bzero (strv[i], strlen (strv[i]));
  g_strfreev (strv);
}

G_DEFINE_AUTO_CLEANUP_FREE_FUNC (SecretStrv, secret_strv_free, NULL)

static void
token_clear (gpointer data)
{
  Token *token = data;

  g_free (token->hash);
}

void
hb_http_tokens_free (HbHttpTokens *tokens)
{
  if (tokens == NULL)
    return;
  g_array_unref (tokens->tokens);
  g_hash_table_unref (tokens->peers);
  explicit_bzero (tokens->key, sizeof tokens->key);
  g_free (tokens);
}

static void
digest (const HbHttpTokens *tokens,
        const char         *token,
        gsize               length,
        guint8              out[DIGEST_LENGTH])
{
  g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA256, tokens->key, sizeof tokens->key);
  gsize out_length = DIGEST_LENGTH;

  g_hmac_update (hmac, (const guchar *) token, (gssize) length);
  g_hmac_get_digest (hmac, out, &out_length);
}

static gboolean
equal_in_constant_time (const guint8 *a,
                        const guint8 *b,
                        gsize         length)
{
  guint8 diff = 0;

  for (gsize i = 0; i < length; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

/**
 * hb_http_scopes_parse:
 * @text: `read`, `write`, `ping`, comma separated
 * @scopes: (out): the scopes, `write` with `read` and `ping`
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with @error set
 */
gboolean
hb_http_scopes_parse (const char *text,
                      guint      *scopes,
                      GError    **error)
{
  g_auto(GStrv) names = g_strsplit (text, ",", -1);

  *scopes = 0;
  for (gsize i = 0; names[i]; i++)
    {
      if (strcmp (names[i], "read") == 0)
        *scopes |= HB_HTTP_SCOPE_READ;
      else if (strcmp (names[i], "write") == 0)
        *scopes |= HB_HTTP_SCOPE_WRITE | HB_HTTP_SCOPE_READ | HB_HTTP_SCOPE_PING;
      else if (strcmp (names[i], "ping") == 0)
        *scopes |= HB_HTTP_SCOPE_PING;
      else
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "“%s” is not a scope (read, write, ping, comma separated)", names[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* A crypt(3) hash as crypt() writes one: "$id$…", of the characters it uses. */
static gboolean
looks_like_hash (const char *secret)
{
  if (secret[0] != '$' || strchr (secret + 1, '$') == NULL)
    return FALSE;
  for (const char *p = secret; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("$./=,-_", *p) == NULL)
      return FALSE;
  return TRUE;
}

/**
 * hb_http_tokens_parse:
 * @contents: the text of a tokens file
 * @length: its length
 * @error: return location for a #GError
 *
 * Reads the tokens file format (see the top of this file). A line that is
 * not one of the two forms, an unknown scope, a `$` secret that is not a
 * crypt(3) hash this system knows, or no token at all is an error naming
 * the line; nothing of such a file is kept.
 *
 * Returns: (transfer full): the tokens, or %NULL with @error set
 */
HbHttpTokens *
hb_http_tokens_parse (const char *contents,
                      gsize       length,
                      GError    **error)
{
  g_autoptr(GArray) list = g_array_new (FALSE, TRUE, sizeof (Token));
  g_auto(GStrv) lines = NULL;
  g_autofree char *text = NULL;
  HbHttpTokens *tokens;
  guint8 key[DIGEST_LENGTH];

  g_array_set_clear_func (list, token_clear);
  if (memchr (contents, '\0', length) != NULL || !g_utf8_validate_len (contents, length, NULL))
    {
      g_set_error_literal (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not UTF-8 text");
      return NULL;
    }
  for (gsize i = 0; i < sizeof key; i += sizeof (guint32))
    {
      guint32 r = g_random_int ();
      memcpy (key + i, &r, sizeof r);
    }
  tokens = g_new0 (HbHttpTokens, 1);
  memcpy (tokens->key, key, sizeof key);
  explicit_bzero (key, sizeof key);

  text = g_strndup (contents, length);
  lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    {
      g_auto(SecretStrv) split = NULL;
      const char *fields[3] = { NULL, NULL, NULL };
      char *line = g_strstrip (lines[i]);
      const char *secret;
      Token token = { 0 };
      guint n = 0;

      if (*line == '\0' || *line == '#')
        continue;
      if (strlen (line) > MAX_LINE || list->len >= MAX_TOKENS)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "line %zu: %s", i + 1,
                       list->len >= MAX_TOKENS ? "more than 1024 tokens" : "longer than 1024 bytes");
          goto fail;
        }
      split = g_strsplit_set (line, " \t", -1);
      for (gsize f = 0; split[f]; f++)
        if (*split[f] && n < 3)
          fields[n++] = split[f];
      if (n > 2)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "line %zu: a line is “SCOPES TOKEN” or “TOKEN”, not more fields", i + 1);
          goto fail;
        }
      if (n == 1)
        token.scopes = HB_HTTP_SCOPE_READ | HB_HTTP_SCOPE_WRITE | HB_HTTP_SCOPE_PING;
      else
        {
          g_autoptr(GError) local = NULL;

          if (!hb_http_scopes_parse (fields[0], &token.scopes, &local))
            {
              g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "line %zu: %s", i + 1, local->message);
              goto fail;
            }
        }
      secret = fields[n - 1];
      if (secret[0] == '$')
        {
          struct crypt_data *data = g_new0 (struct crypt_data, 1);
          /* a hash this system's crypt() cannot check would refuse every token */
          const char *check = looks_like_hash (secret) ? crypt_rn ("", secret, data, sizeof *data) : NULL;
          gboolean known = check != NULL && check[0] == '$';

          g_free (data);
          if (!known)
            {
              g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                           "line %zu: a secret starting with “$” must be a crypt(3) hash, such as "
                           "mkpasswd -m yescrypt or openssl passwd -6 write, and this one is not", i + 1);
              goto fail;
            }
          token.hash = g_strdup (secret);
        }
      else
        {
          if (strlen (secret) < 16 && tokens->short_line == 0)
            tokens->short_line = i + 1;
          digest (tokens, secret, strlen (secret), token.digest);
        }
      g_array_append_val (list, token);
    }
  if (list->len == 0)
    {
      g_set_error_literal (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "no token in the tokens file");
      goto fail;
    }
  for (gsize i = 0; lines[i]; i++)
    explicit_bzero (lines[i], strlen (lines[i]));
  explicit_bzero (text, length);
  tokens->tokens = g_steal_pointer (&list);
  tokens->peers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return tokens;

fail:
  for (gsize i = 0; lines[i]; i++)
    explicit_bzero (lines[i], strlen (lines[i]));
  explicit_bzero (text, length);
  g_free (tokens);
  return NULL;
}

/**
 * hb_http_tokens_load:
 * @path: a tokens file, readable by its owner only
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the tokens, or %NULL with @error set
 */
HbHttpTokens *
hb_http_tokens_load (const char *path,
                     GError    **error)
{
  g_autofree char *contents = NULL;
  g_autoptr(GError) local = NULL;
  HbHttpTokens *tokens;
  gsize length;

  if (!hb_config_check_file (path, "a tokens file", 1024 * 1024, error) ||
      !g_file_get_contents (path, &contents, &length, error))
    return NULL;
  tokens = hb_http_tokens_parse (contents, length, &local);
  explicit_bzero (contents, length);
  if (tokens == NULL)
    g_set_error (error, local->domain, local->code, "%s: %s", path, local->message);
  else if (tokens->short_line)
    g_warning ("%s:%zu: a token of fewer than 16 characters is easy to guess; make one with "
               "openssl rand -hex 32", path, tokens->short_line);
  return tokens;
}

/* The scopes of @presented, 0 if it is no token; HASHING if it is not
 * known by its digest and only hashing could tell. */
#define NEEDS_HASHING G_MAXUINT

static guint
lookup (HbHttpTokens *tokens,
        const char   *presented,
        gboolean      may_hash)
{
  guint8 presented_digest[DIGEST_LENGTH];
  guint scopes = 0;
  gboolean unverified = FALSE;

  digest (tokens, presented, strlen (presented), presented_digest);
  /* every entry, whatever matched: the time says nothing of which */
  for (guint i = 0; i < tokens->tokens->len; i++)
    {
      Token *token = &g_array_index (tokens->tokens, Token, i);

      if (token->hash && !token->verified)
        unverified = TRUE;
      else if (equal_in_constant_time (presented_digest, token->digest, DIGEST_LENGTH))
        scopes |= token->scopes;
    }
  if (scopes != 0 || !unverified)
    return scopes;
  if (!may_hash)
    return NEEDS_HASHING;

  for (guint i = 0; i < tokens->tokens->len; i++)
    {
      Token *token = &g_array_index (tokens->tokens, Token, i);
      struct crypt_data *data;
      const char *hashed;

      if (token->hash == NULL || token->verified)
        continue;
      data = g_new0 (struct crypt_data, 1);
      hashed = crypt_rn (presented, token->hash, data, sizeof *data);
      if (hashed && strlen (hashed) == strlen (token->hash) &&
          equal_in_constant_time ((const guint8 *) hashed, (const guint8 *) token->hash, strlen (hashed)))
        {
          memcpy (token->digest, presented_digest, DIGEST_LENGTH);
          token->verified = TRUE;
          scopes |= token->scopes;
        }
      explicit_bzero (data, sizeof *data);
      g_free (data);
    }
  return scopes;
}

/**
 * hb_http_tokens_scopes:
 * @tokens: tokens
 * @presented: a token as a client presents it
 *
 * What @presented may do, hashing it if need be (no rate limit: for
 * tests and fuzzing; requests go through hb_http_authenticate()).
 *
 * Returns: its scopes, 0 if it is no token
 */
guint
hb_http_tokens_scopes (HbHttpTokens *tokens,
                       const char   *presented)
{
  return lookup (tokens, presented, TRUE);
}

/* The address a request comes from, as the rate limit counts it */
static const char *
peer_of (SoupServerMessage *msg)
{
  const char *host = soup_server_message_get_remote_host (msg);

  return host ? host : "?";
}

static Peer *
find_peer (HbHttpTokens *tokens,
           const char   *address,
           gint64        now,
           gboolean      create)
{
  Peer *peer = g_hash_table_lookup (tokens->peers, address);

  if (peer && now - peer->window_start >= WINDOW_USEC)
    {
      peer->window_start = now;
      peer->failures = 0;
      peer->warned = FALSE;
    }
  if (peer || !create)
    return peer;
  if (g_hash_table_size (tokens->peers) >= MAX_PEERS)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, tokens->peers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (now - ((Peer *) value)->window_start >= WINDOW_USEC)
          g_hash_table_iter_remove (&iter);
      /* still full: everyone else shares one entry */
      if (g_hash_table_size (tokens->peers) >= MAX_PEERS)
        address = "*";
      peer = g_hash_table_lookup (tokens->peers, address);
      if (peer)
        return peer;
    }
  peer = g_new0 (Peer, 1);
  peer->window_start = now;
  g_hash_table_insert (tokens->peers, g_strdup (address), peer);
  return peer;
}

/**
 * hb_http_needed_scope:
 * @self: a #HbHttp
 * @method: the request's method
 * @path: the request's path
 *
 * What a request needs: the one rule (see the top of this file).
 *
 * Returns: an #HbHttpScope, or 0 for none
 */
guint
hb_http_needed_scope (HbHttp     *self,
                      const char *method,
                      const char *path)
{
  if (hb_http_is_ping_path (path))
    return hb_http_ping_has_key (self, path) || self->tokens == NULL ? 0 : HB_HTTP_SCOPE_PING;
  if (strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0)
    return self->reads_need_token && strcmp (path, "/health") != 0 ? HB_HTTP_SCOPE_READ : 0;
  return self->tokens ? HB_HTTP_SCOPE_WRITE : 0;
}

static GQuark
granted_quark (void)
{
  return g_quark_from_static_string ("hb-http-granted");
}

/**
 * hb_http_authenticate:
 * @self: a #HbHttp
 * @msg: a request whose headers are read
 * @needed: the scopes it needs (hb_http_needed_scope()), not 0
 *
 * Checks the request's bearer token; what it grants is kept for
 * hb_http_granted(). A refusal is counted and, for a wrong token, logged.
 *
 * Returns: why it is refused, or %HB_HTTP_AUTH_OK
 */
HbHttpAuthResult
hb_http_authenticate (HbHttp            *self,
                      SoupServerMessage *msg,
                      guint              needed)
{
  HbHttpTokens *tokens = self->tokens;
  const char *header = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                     "Authorization");
  const char *address = peer_of (msg);
  gint64 now = g_get_monotonic_time ();
  HbHttpAuthResult result;
  Peer *peer = NULL;
  guint scopes;

  if (tokens == NULL)
    result = HB_HTTP_AUTH_MISSING;   /* reads off loopback need tokens, and listening checked that */
  else if (header == NULL || g_ascii_strncasecmp (header, "Bearer ", 7) != 0 || header[7] == '\0')
    result = HB_HTTP_AUTH_MISSING;
  else if ((peer = find_peer (tokens, address, now, FALSE)) && peer->failures >= HB_HTTP_AUTH_MAX_FAILURES)
    result = HB_HTTP_AUTH_RATE_LIMITED;
  else
    {
      scopes = lookup (tokens, header + 7, FALSE);
      if (scopes == NEEDS_HASHING)
        {
          if (now - tokens->hashing_window >= WINDOW_USEC)
            {
              tokens->hashing_window = now;
              tokens->hashing = 0;
            }
          if (tokens->hashing >= HB_HTTP_AUTH_MAX_HASHING)
            scopes = NEEDS_HASHING;
          else
            {
              tokens->hashing++;
              scopes = lookup (tokens, header + 7, TRUE);
            }
        }
      if (scopes == NEEDS_HASHING)
        result = HB_HTTP_AUTH_RATE_LIMITED;
      else if (scopes == 0)
        {
          result = HB_HTTP_AUTH_INVALID;
          peer = find_peer (tokens, address, now, TRUE);
          peer->failures++;
          if (!peer->warned)
            {
              const char *path = g_uri_get_path (soup_server_message_get_uri (msg));

              /* never the token, nor a ping URL's key */
              g_warning ("HTTP: a wrong token from %s (%s %s); more than %u in a minute and its tokens are "
                         "not checked until the minute is over", address, soup_server_message_get_method (msg),
                         hb_http_is_ping_path (path) ? "/ping/…" : path, HB_HTTP_AUTH_MAX_FAILURES);
              peer->warned = TRUE;
            }
          else if (peer->failures == HB_HTTP_AUTH_MAX_FAILURES)
            g_warning ("HTTP: %u wrong tokens from %s in the last minute; its tokens are not checked for %"
                       G_GINT64_FORMAT " s", peer->failures, address,
                       (peer->window_start + WINDOW_USEC - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
        }
      else if ((scopes & needed) == 0)
        result = HB_HTTP_AUTH_SCOPE;
      else
        {
          g_object_set_qdata (G_OBJECT (msg), granted_quark (), GUINT_TO_POINTER (scopes));
          return HB_HTTP_AUTH_OK;
        }
    }
  self->auth_failures[result]++;
  return result;
}

/**
 * hb_http_granted:
 * @msg: a request hb_http_authenticate() accepted, or that needed nothing
 *
 * Returns: the scopes its token grants, 0 without one
 */
guint
hb_http_granted (SoupServerMessage *msg)
{
  return GPOINTER_TO_UINT (g_object_get_qdata (G_OBJECT (msg), granted_quark ()));
}

/**
 * hb_http_auth_refusal:
 * @self: a #HbHttp
 * @msg: the refused request
 * @result: why, from hb_http_authenticate()
 * @needed: the scopes it needed
 * @status: (out): the HTTP status
 * @header: (out): the name of the header to send with it
 * @value: (out) (transfer full): its value
 *
 * Returns: (transfer full): the message of the refusal
 */
char *
hb_http_auth_refusal (HbHttp            *self,
                      SoupServerMessage *msg,
                      HbHttpAuthResult   result,
                      guint              needed,
                      guint             *status,
                      const char       **header,
                      char             **value)
{
  const char *scope = (needed & HB_HTTP_SCOPE_WRITE) ? "write" : (needed & HB_HTTP_SCOPE_PING) ? "ping" : "read";

  *header = "WWW-Authenticate";
  switch (result)
    {
    case HB_HTTP_AUTH_MISSING:
      *status = SOUP_STATUS_UNAUTHORIZED;
      *value = g_strdup ("Bearer realm=\"heartbeatd\"");
      return g_strdup_printf ("This needs “Authorization: Bearer <token>” with a token of scope %s", scope);
    case HB_HTTP_AUTH_INVALID:
      *status = SOUP_STATUS_UNAUTHORIZED;
      *value = g_strdup ("Bearer realm=\"heartbeatd\", error=\"invalid_token\"");
      return g_strdup ("The token of “Authorization: Bearer <token>” is not one of the configured tokens");
    case HB_HTTP_AUTH_SCOPE:
      *status = SOUP_STATUS_FORBIDDEN;
      *value = g_strdup_printf ("Bearer realm=\"heartbeatd\", error=\"insufficient_scope\", scope=\"%s\"", scope);
      return g_strdup_printf ("The token of “Authorization: Bearer <token>” does not have the scope %s", scope);
    case HB_HTTP_AUTH_RATE_LIMITED:
    case HB_HTTP_AUTH_OK:
    default:
      {
        Peer *peer = self->tokens ? find_peer (self->tokens, peer_of (msg), g_get_monotonic_time (), FALSE) : NULL;
        gint64 left = peer && peer->failures >= HB_HTTP_AUTH_MAX_FAILURES
                      ? peer->window_start + WINDOW_USEC - g_get_monotonic_time ()
                      : self->tokens ? self->tokens->hashing_window + WINDOW_USEC - g_get_monotonic_time () : 0;

        *status = STATUS_TOO_MANY_REQUESTS;
        *header = "Retry-After";
        *value = g_strdup_printf ("%" G_GINT64_FORMAT, MAX ((gint64) 1, (left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC));
        return g_strdup_printf ("Too many wrong tokens; tokens are not checked for %s s", *value);
      }
    }
}

/**
 * hb_http_set_tokens_file:
 * @http: a #HbHttp
 * @path: (nullable): a tokens file (see the top of hb-http-auth.c),
 *   readable by its owner only; %NULL for none
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with @error set (the old tokens are kept)
 */
gboolean
hb_http_set_tokens_file (HbHttp     *http,
                         const char *path,
                         GError    **error)
{
  HbHttpTokens *tokens = NULL;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);

  if (path && (tokens = hb_http_tokens_load (path, error)) == NULL)
    return FALSE;
  if (tokens == NULL && http->address && !g_inet_address_get_is_loopback (http->address))
    {
      g_autofree char *address = g_inet_address_to_string (http->address);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "HTTP serves %s, an address other than loopback, which needs a tokens file", address);
      return FALSE;
    }
  g_clear_pointer (&http->tokens, hb_http_tokens_free);
  http->tokens = tokens;
  return TRUE;
}

/* test-crash.c: kill -9 heartbeatd in the middle of a flood of calls
 *
 * Several clients (each its own bus connection, each with its own small
 * space of agent ids, "c2-17") keep a few asynchronous Register, Unregister
 * and Beat calls in flight each. At a random moment the daemon is killed
 * with SIGKILL; when every call has been answered (by the daemon before it
 * died, or by the bus after), it is restarted on the same state directory
 * and what it restored is compared with what the clients were told:
 *
 *  - an id whose last Register/Unregister was acknowledged exists iff that
 *    call was a Register (nothing acknowledged is lost, nothing removed
 *    comes back);
 *  - an id with a call whose reply never came (the bus answered NoReply:
 *    the daemon died holding it) may be in the state before that call or
 *    after it;
 *  - no agent exists that no client ever registered, and every agent
 *    listed has an id from the clients' spaces.
 *
 * For that to be unambiguous a client has at most one Register/Unregister
 * outstanding per id (Beats may overlap): the calls of one id then take
 * effect one after the other, each after the previous one's reply.
 *
 * What each reply means for the agent's existence:
 *
 *  - success: Register → it exists, Unregister → it does not;
 *  - NotFound (Unregister, Beat): it did not exist, nothing changed;
 *  - QuotaExceeded (Register): refused; only a new agent can be refused,
 *    so it did not exist and still does not;
 *  - NotSaved (Register, Unregister): the change could not be written and
 *    was taken back; nothing changed;
 *  - Exists (Register): another uid holds the id. Every client here is
 *    root and the spaces are disjoint, so this is a failure;
 *  - org.freedesktop.DBus.Error.NoReply: the daemon died with the call;
 *    it may or may not have taken effect (and been written);
 *  - org.freedesktop.DBus.Error.ServiceUnknown / NameHasNoOwner: sent
 *    after the daemon had gone; no daemon ever saw it, nothing changed.
 *
 * While the daemon runs, the replies are also checked against the model
 * (an Unregister that succeeds must find an agent the model has, a
 * NotFound must not, a Beat sent while no Register/Unregister of its id was
 * outstanding must find the agent iff the model has it): the state each
 * round starts from is the one the restarted daemon showed.
 *
 * Rounds repeat (flood, kill, restart, check) for at most CRASH_ROUNDS
 * rounds or CRASH_SECONDS seconds. The seed of the random choices is
 * printed; HB_CRASH_SEED=N repeats them: the moments of the kills, and each
 * client's sequence of ids and methods (how far into it a client gets
 * before a kill, and so how the calls interleave, depends on timing).
 * HB_CRASH_ROUNDS and HB_CRASH_SECONDS override the bounds. Nothing
 * sleeps: the kill is a timeout on the main loop, every wait is bounded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-harness.h"

#define N_CLIENTS            4
#define IDS_PER_CLIENT       40
#define IN_FLIGHT_PER_CLIENT 8
#define CRASH_ROUNDS         10
#define CRASH_SECONDS        20
#define KILL_MIN_MS          50
#define KILL_MAX_MS          400
/* Longer than any bounded wait here: a call never times out locally. */
#define CALL_TIMEOUT_MS      60000

#define BUS_ERROR_NO_REPLY        "org.freedesktop.DBus.Error.NoReply"
#define BUS_ERROR_SERVICE_UNKNOWN "org.freedesktop.DBus.Error.ServiceUnknown"
#define BUS_ERROR_NAME_HAS_NO_OWNER "org.freedesktop.DBus.Error.NameHasNoOwner"

/* agents-per-uid well above N_CLIENTS * IDS_PER_CLIENT (root is exempt
 * today; the limit is set anyway so that the test does not rely on it) */
static const char crash_config[] =
  "# heartbeatd.conf written by test-crash\n"
  "[monitor]\n"
  "check-interval=200ms\n"
  "stale-threshold=5s\n"
  "timeout-threshold=10min\n"
  "stale-warning-only-once=true\n"
  "\n"
  "[limits]\n"
  "agents-per-uid=1024\n";

typedef enum {
  OP_REGISTER,
  OP_UNREGISTER,
  OP_BEAT,
} Op;

static const char *const op_methods[] = { "Register", "Unregister", "Beat" };
static const char op_letters[] = { 'R', 'U', 'B' };

typedef struct {
  char     *name;            /* "c2-17" */
  gboolean  exists;          /* after the last acknowledged call */
  gboolean  busy;            /* a Register/Unregister is outstanding */
  gboolean  unknown;         /* the last one got no reply: effect unknown */
  Op        unknown_op;
  gboolean  ever_registered; /* a Register was ever sent for it */
  GString  *history;         /* this round's Register/Unregister calls */
} Agent;

typedef struct _Crash Crash;

typedef struct {
  Crash           *crash;
  guint            index;
  GDBusConnection *connection;
  GRand           *rand;     /* its ids and methods */
  Agent            agents[IDS_PER_CLIENT];
} Client;

typedef struct {
  guint registers_sent;
  guint unregisters_sent;
  guint beats_sent;
  guint registered;          /* Register acknowledged with success */
  guint unregistered;        /* Unregister acknowledged with success */
  guint unregister_not_found;
  guint refused;             /* QuotaExceeded, NotSaved */
  guint beats_ok;
  guint beats_not_found;
  guint changes_outstanding_at_kill;
  guint beats_outstanding_at_kill;
  guint in_flight;           /* Register/Unregister answered NoReply */
  guint beats_in_flight;
  guint undelivered;         /* answered by the bus: no daemon */
} Counts;

struct _Crash {
  HbHarness  *h;
  GRand      *rand;          /* the moments of the kills */
  Client      clients[N_CLIENTS];
  GHashTable *by_name;       /* name → Agent* */
  guint       round;
  gboolean    killed;
  guint       outstanding;   /* calls without an answer yet */
  guint       changes_outstanding;
  Counts      counts;
  Counts      total;
};

typedef struct {
  Client *client;
  Agent  *agent;
  Op      op;
  int     beat_expect;       /* -1, or whether the agent exists for the Beat */
} PendingCall;

/* ------------------------------------------------------------------ */
/* Failing with the story of an id                                     */

static void
fail_agent (Crash      *crash,
            Agent      *agent,
            const char *file,
            int         line,
            const char *func,
            const char *format,
            ...) G_GNUC_PRINTF (6, 7);

static void
fail_agent (Crash      *crash,
            Agent      *agent,
            const char *file,
            int         line,
            const char *func,
            const char *format,
            ...)
{
  g_autofree char *what = NULL;
  g_autofree char *message = NULL;
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (agent)
    {
      g_test_message ("round %u, agent %s: the model says %s%s; its calls this round "
                      "(R/U, then :ok, :NotFound, :refused, :in-flight or :undelivered): %s",
                      crash->round, agent->name, agent->exists ? "exists" : "absent",
                      agent->unknown ? " before a call in flight" : "",
                      agent->history->len ? agent->history->str : "(none)");
      message = g_strdup_printf ("round %u, agent %s: %s", crash->round, agent->name, what);
    }
  else
    {
      message = g_strdup_printf ("round %u: %s", crash->round, what);
    }
  g_assertion_message (G_LOG_DOMAIN, file, line, func, message);
}

#define FAIL_AGENT(crash, agent, ...) \
  fail_agent ((crash), (agent), __FILE__, __LINE__, G_STRFUNC, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* The flood                                                           */

static void send_one (Client *client);

typedef enum {
  ANSWER_OK,
  ANSWER_NOT_FOUND,
  ANSWER_REFUSED,        /* QuotaExceeded, NotSaved: nothing changed */
  ANSWER_IN_FLIGHT,      /* NoReply: the daemon died with it */
  ANSWER_UNDELIVERED,    /* no daemon owned the name */
} Answer;

static const char *const answer_names[] = { "ok", "NotFound", "refused", "in-flight", "undelivered" };

static Answer
classify (Crash        *crash,
          PendingCall  *call,
          const GError *error)
{
  g_autofree char *remote = NULL;
  gboolean change = call->op != OP_BEAT;

  if (error == NULL)
    return ANSWER_OK;

  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, HB_ERROR_PREFIX "NotFound") == 0 && call->op != OP_REGISTER)
    return ANSWER_NOT_FOUND;
  if (g_strcmp0 (remote, HB_ERROR_PREFIX "QuotaExceeded") == 0 && call->op == OP_REGISTER)
    return ANSWER_REFUSED;
  if (g_strcmp0 (remote, HB_ERROR_PREFIX "NotSaved") == 0 && change)
    return ANSWER_REFUSED;
  if (crash->killed && g_strcmp0 (remote, BUS_ERROR_NO_REPLY) == 0)
    return ANSWER_IN_FLIGHT;
  if (crash->killed && (g_strcmp0 (remote, BUS_ERROR_SERVICE_UNKNOWN) == 0 ||
                        g_strcmp0 (remote, BUS_ERROR_NAME_HAS_NO_OWNER) == 0))
    return ANSWER_UNDELIVERED;

  FAIL_AGENT (crash, call->agent, "%s%s failed unexpectedly: %s (%s)",
              op_methods[call->op], crash->killed ? " (after the kill)" : " (daemon running)",
              error->message, remote ? remote : "a local error");
  return ANSWER_UNDELIVERED;
}

/* A Register/Unregister was answered: what the model learns. */
static void
settle_change (Crash       *crash,
               PendingCall *call,
               Answer       answer)
{
  Agent *agent = call->agent;
  Counts *counts = &crash->counts;

  g_assert_true (agent->busy);
  agent->busy = FALSE;
  crash->changes_outstanding--;
  g_string_append_printf (agent->history, ":%s ", answer_names[answer]);

  switch (answer)
    {
    case ANSWER_OK:
      if (call->op == OP_UNREGISTER && !agent->exists)
        FAIL_AGENT (crash, agent, "Unregister succeeded for an agent the model says does not exist");
      agent->exists = call->op == OP_REGISTER;
      if (call->op == OP_REGISTER)
        counts->registered++;
      else
        counts->unregistered++;
      break;
    case ANSWER_NOT_FOUND:
      /* Unregister only (classify) */
      if (agent->exists)
        FAIL_AGENT (crash, agent, "Unregister failed with NotFound but the agent was acknowledged");
      counts->unregister_not_found++;
      break;
    case ANSWER_REFUSED:
      counts->refused++;
      break;
    case ANSWER_IN_FLIGHT:
      agent->unknown = TRUE;
      agent->unknown_op = call->op;
      counts->in_flight++;
      break;
    case ANSWER_UNDELIVERED:
      counts->undelivered++;
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
settle_beat (Crash       *crash,
             PendingCall *call,
             Answer       answer)
{
  Counts *counts = &crash->counts;

  switch (answer)
    {
    case ANSWER_OK:
      if (call->beat_expect == FALSE)
        FAIL_AGENT (crash, call->agent, "Beat succeeded for an agent that did not exist when it was sent");
      counts->beats_ok++;
      break;
    case ANSWER_NOT_FOUND:
      if (call->beat_expect == TRUE)
        FAIL_AGENT (crash, call->agent, "Beat failed with NotFound for an agent that existed when it was sent");
      counts->beats_not_found++;
      break;
    case ANSWER_IN_FLIGHT:
      counts->beats_in_flight++;
      break;
    case ANSWER_UNDELIVERED:
      counts->undelivered++;
      break;
    case ANSWER_REFUSED:
    default:
      g_assert_not_reached ();
    }
}

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  PendingCall *call = user_data;
  Client *client = call->client;
  Crash *crash = client->crash;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  Answer answer;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  answer = classify (crash, call, error);
  if (call->op == OP_BEAT)
    settle_beat (crash, call, answer);
  else
    settle_change (crash, call, answer);
  crash->outstanding--;
  g_free (call);

  if (!crash->killed)
    send_one (client);
}

static void
send_one (Client *client)
{
  Crash *crash = client->crash;
  Agent *agent = &client->agents[g_rand_int_range (client->rand, 0, IDS_PER_CLIENT)];
  guint dice = (guint) g_rand_int_range (client->rand, 0, 100);
  PendingCall *call = g_new0 (PendingCall, 1);
  GVariant *parameters;

  call->client = client;
  call->agent = agent;
  call->op = dice < 40 ? OP_REGISTER : dice < 75 ? OP_UNREGISTER : OP_BEAT;
  call->beat_expect = -1;
  /* one Register/Unregister of an id at a time; Beats may overlap */
  if (agent->busy)
    call->op = OP_BEAT;
  g_assert_false (agent->unknown);

  switch (call->op)
    {
    case OP_REGISTER:
      parameters = g_variant_new ("(sa{sv})", agent->name, NULL);
      agent->ever_registered = TRUE;
      crash->counts.registers_sent++;
      break;
    case OP_UNREGISTER:
      parameters = g_variant_new ("(s)", agent->name);
      crash->counts.unregisters_sent++;
      break;
    case OP_BEAT:
    default:
      parameters = g_variant_new ("(sa{sv})", agent->name, NULL);
      /* with nothing outstanding before it on this connection, the Beat
       * sees the state the model has */
      if (!agent->busy)
        call->beat_expect = agent->exists;
      crash->counts.beats_sent++;
      break;
    }
  if (call->op != OP_BEAT)
    {
      agent->busy = TRUE;
      crash->changes_outstanding++;
      g_string_append_c (agent->history, op_letters[call->op]);
    }
  crash->outstanding++;
  g_dbus_connection_call (client->connection, HB_NAME, HB_PATH, HB_IFACE, op_methods[call->op],
                          parameters, G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                          CALL_TIMEOUT_MS, NULL, on_reply, call);
}

static gboolean
on_kill (gpointer user_data)
{
  Crash *crash = user_data;

  crash->counts.changes_outstanding_at_kill = crash->changes_outstanding;
  crash->counts.beats_outstanding_at_kill = crash->outstanding - crash->changes_outstanding;
  hb_harness_signal_daemon (crash->h, SIGKILL);
  crash->killed = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_deadline (gpointer user_data)
{
  gboolean *passed = user_data;

  *passed = TRUE;
  return G_SOURCE_REMOVE;
}

/* Floods the daemon, kills it after @kill_ms, and returns once every call
 * has an answer and the daemon is reaped. */
static void
flood_and_kill (Crash *crash,
                guint  kill_ms)
{
  HbHarness *h = crash->h;
  HbChild *daemon = h->daemon;
  gboolean deadline_passed = FALSE;
  guint deadline_id;
  int wait_status;

  crash->killed = FALSE;
  g_assert_cmpuint (crash->outstanding, ==, 0);
  /* bounds the whole flood: the kill, then the bus's answers */
  deadline_id = g_timeout_add (kill_ms + HB_WAIT_MS, on_deadline, &deadline_passed);
  for (guint c = 0; c < N_CLIENTS; c++)
    for (guint i = 0; i < IN_FLIGHT_PER_CLIENT; i++)
      send_one (&crash->clients[c]);
  g_timeout_add (kill_ms, on_kill, crash);

  while (!(crash->killed && crash->outstanding == 0))
    {
      if (deadline_passed)
        FAIL_AGENT (crash, NULL, "%u calls still unanswered %u ms after the kill",
                    crash->outstanding, HB_WAIT_MS);
      if (!crash->killed && daemon->exited)
        {
          g_autofree char *how = WIFSIGNALED (daemon->wait_status)
                                   ? g_strdup_printf ("signal %d", WTERMSIG (daemon->wait_status))
                                   : g_strdup_printf ("wait status 0x%x", (guint) daemon->wait_status);

          FAIL_AGENT (crash, NULL, "heartbeatd exited (%s) during the flood, before the kill", how);
        }
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (deadline_id);

  wait_status = hb_harness_wait_exit (h, daemon, HB_WAIT_MS);
  g_assert_true (WIFSIGNALED (wait_status));
  g_assert_cmpint (WTERMSIG (wait_status), ==, SIGKILL);
}

/* ------------------------------------------------------------------ */
/* After the restart                                                   */

static void
check_restored (Crash *crash,
                guint *out_n_agents,
                guint *out_resolved_before,
                guint *out_resolved_after)
{
  HbHarness *h = crash->h;
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "ListAgents", NULL, "(aa{sv})");
  g_autoptr(GVariant) agents = g_variant_get_child_value (reply, 0);
  g_autoptr(GHashTable) listed = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr(GVariant) count = NULL;
  guint resolved_before = 0, resolved_after = 0;

  /* every agent listed is one of ours, listed once */
  for (gsize i = 0; i < g_variant_n_children (agents); i++)
    {
      g_autoptr(GVariant) dict = g_variant_get_child_value (agents, i);
      const char *id = hb_dict_string (dict, "id");
      Agent *agent = g_hash_table_lookup (crash->by_name, id);

      if (agent == NULL)
        FAIL_AGENT (crash, NULL, "the restarted daemon lists “%s”, an id from no client's space", id);
      if (!g_hash_table_add (listed, agent))
        FAIL_AGENT (crash, agent, "listed twice by ListAgents");
    }
  count = hb_harness_get_property (h, "AgentCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, g_hash_table_size (listed));

  for (guint c = 0; c < N_CLIENTS; c++)
    for (guint i = 0; i < IDS_PER_CLIENT; i++)
      {
        Agent *agent = &crash->clients[c].agents[i];
        gboolean present = g_hash_table_contains (listed, agent);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) got = NULL;

        /* GetAgent agrees with ListAgents */
        got = hb_harness_call (h, NULL, "GetAgent", g_variant_new ("(s)", agent->name), "(a{sv})", &error);
        if (present && got == NULL)
          FAIL_AGENT (crash, agent, "listed, but GetAgent failed: %s", error->message);
        if (!present)
          {
            g_autofree char *remote = got ? NULL : g_dbus_error_get_remote_error (error);

            if (g_strcmp0 (remote, HB_ERROR_PREFIX "NotFound") != 0)
              FAIL_AGENT (crash, agent, "not listed, but GetAgent %s",
                          got ? "found it" : error->message);
          }

        /* nothing invented */
        if (present && !agent->ever_registered)
          FAIL_AGENT (crash, agent, "restored, but no client ever registered it");

        if (agent->unknown)
          {
            gboolean after = agent->unknown_op == OP_REGISTER;

            /* the state before the call in flight, or after it */
            if (present != agent->exists && present != after)
              FAIL_AGENT (crash, agent, "restored as %s, neither before nor after the call in flight",
                          present ? "existing" : "absent");
            if (after != agent->exists)
              {
                if (present == after)
                  resolved_after++;
                else
                  resolved_before++;
              }
          }
        else if (present != agent->exists)
          {
            FAIL_AGENT (crash, agent, "%s", present
                        ? "restored, but its last acknowledged call was an Unregister (or none)"
                        : "lost: its last acknowledged call was a Register");
          }

        /* what the next round starts from */
        agent->exists = present;
        agent->unknown = FALSE;
        g_string_truncate (agent->history, 0);
      }

  *out_n_agents = g_hash_table_size (listed);
  *out_resolved_before = resolved_before;
  *out_resolved_after = resolved_after;
}

/* ------------------------------------------------------------------ */
/* The test                                                            */

static guint
env_uint (const char *name,
          guint       fallback,
          guint       max)
{
  const char *text = g_getenv (name);
  guint64 value = 0;
  g_autoptr(GError) error = NULL;

  if (text == NULL || *text == '\0')
    return fallback;
  if (!g_ascii_string_to_unsigned (text, 10, 0, max, &value, &error))
    g_error ("$%s: %s", name, error->message);
  return (guint) value;
}

static void
add_counts (Counts       *total,
            const Counts *round)
{
  total->registers_sent += round->registers_sent;
  total->unregisters_sent += round->unregisters_sent;
  total->beats_sent += round->beats_sent;
  total->registered += round->registered;
  total->unregistered += round->unregistered;
  total->unregister_not_found += round->unregister_not_found;
  total->refused += round->refused;
  total->beats_ok += round->beats_ok;
  total->beats_not_found += round->beats_not_found;
  total->changes_outstanding_at_kill += round->changes_outstanding_at_kill;
  total->beats_outstanding_at_kill += round->beats_outstanding_at_kill;
  total->in_flight += round->in_flight;
  total->beats_in_flight += round->beats_in_flight;
  total->undelivered += round->undelivered;
}

static void
test_kill9_during_flood (void)
{
  g_autoptr(HbHarness) h = hb_harness_new ();
  guint32 seed = env_uint ("HB_CRASH_SEED", g_random_int (), G_MAXUINT32);
  guint max_rounds = env_uint ("HB_CRASH_ROUNDS", CRASH_ROUNDS, 10000);
  guint max_seconds = env_uint ("HB_CRASH_SECONDS", CRASH_SECONDS, 3600);
  gint64 start;
  Crash crash = { 0 };

  g_test_message ("seed %u (HB_CRASH_SEED=%u repeats the choices); at most %u rounds or %u s",
                  seed, seed, max_rounds, max_seconds);

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, crash_config);
  hb_harness_start_daemon (h, 0);

  crash.h = h;
  crash.rand = g_rand_new_with_seed (seed);
  crash.by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint c = 0; c < N_CLIENTS; c++)
    {
      Client *client = &crash.clients[c];

      client->crash = &crash;
      client->index = c;
      client->connection = hb_harness_connect (h);
      client->rand = g_rand_new_with_seed (seed + 1 + c);
      for (guint i = 0; i < IDS_PER_CLIENT; i++)
        {
          Agent *agent = &client->agents[i];

          agent->name = g_strdup_printf ("c%u-%u", c, i);
          agent->history = g_string_new (NULL);
          g_hash_table_insert (crash.by_name, agent->name, agent);
        }
    }

  start = g_get_monotonic_time ();
  for (crash.round = 1;
       crash.round <= max_rounds && g_get_monotonic_time () - start < (gint64) max_seconds * G_USEC_PER_SEC;
       crash.round++)
    {
      guint kill_ms = (guint) g_rand_int_range (crash.rand, KILL_MIN_MS, KILL_MAX_MS + 1);
      guint n_agents = 0, resolved_before = 0, resolved_after = 0;
      Counts *n = &crash.counts;

      memset (&crash.counts, 0, sizeof crash.counts);
      flood_and_kill (&crash, kill_ms);
      hb_harness_start_daemon (h, 0);
      check_restored (&crash, &n_agents, &resolved_before, &resolved_after);

      g_test_message ("round %u: killed at %u ms; sent %u Register, %u Unregister, %u Beat; "
                      "acknowledged %u Register, %u Unregister, %u Unregister NotFound, %u refused, "
                      "%u Beat (%u NotFound); at the kill %u Register/Unregister and %u Beat outstanding, "
                      "of which %u Register/Unregister and %u Beat got NoReply, %u calls undelivered; "
                      "after the restart %u agents, in-flight calls resolved %u as before, %u as after",
                      crash.round, kill_ms, n->registers_sent, n->unregisters_sent, n->beats_sent,
                      n->registered, n->unregistered, n->unregister_not_found, n->refused,
                      n->beats_ok + n->beats_not_found, n->beats_not_found,
                      n->changes_outstanding_at_kill, n->beats_outstanding_at_kill,
                      n->in_flight, n->beats_in_flight, n->undelivered,
                      n_agents, resolved_before, resolved_after);
      add_counts (&crash.total, &crash.counts);
    }

  g_test_message ("%u rounds in %.1f s: acknowledged %u Register and %u Unregister in all, "
                  "%u Register/Unregister in flight at a kill",
                  crash.round - 1, (g_get_monotonic_time () - start) / 1e6,
                  crash.total.registered, crash.total.unregistered, crash.total.in_flight);
  /* the flood reached the daemon */
  g_assert_cmpuint (crash.total.registered, >, 0);
  g_assert_cmpuint (crash.total.unregistered, >, 0);

  g_hash_table_unref (crash.by_name);
  for (guint c = 0; c < N_CLIENTS; c++)
    {
      Client *client = &crash.clients[c];

      g_dbus_connection_close_sync (client->connection, NULL, NULL);
      g_clear_object (&client->connection);
      g_rand_free (client->rand);
      for (guint i = 0; i < IDS_PER_CLIENT; i++)
        {
          g_free (client->agents[i].name);
          g_string_free (client->agents[i].history, TRUE);
        }
    }
  g_rand_free (crash.rand);
}

/* ------------------------------------------------------------------ */
/* Run records                                                         */

#define RUNS_KEPT        20   /* HEARTBEAT_RUNS_MAX */
#define RUN_OUTPUT_KEPT  4096 /* HEARTBEAT_RUN_OUTPUT_MAX */
#define FLOOD_RUNS       100  /* under the bus's 128 pending replies per connection */
#define FLOOD_KILL_AFTER 5

static GVariant *
get_runs (HbHarness  *h,
          const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetRuns", g_variant_new ("(s)", id), "(aa{sv})");

  return g_variant_get_child_value (reply, 0);
}

static void
kill9_and_restart (HbHarness *h)
{
  HbChild *daemon = h->daemon;
  int wait_status;

  hb_harness_signal_daemon (h, SIGKILL);
  wait_status = hb_harness_wait_exit (h, daemon, HB_WAIT_MS);
  g_assert_true (WIFSIGNALED (wait_status));
  g_assert_cmpint (WTERMSIG (wait_status), ==, SIGKILL);
  hb_harness_start_daemon (h, 0);
}

static void
assert_same_runs (GVariant *expected,
                  GVariant *restored)
{
  gsize n = g_variant_n_children (expected);

  g_assert_cmpuint (g_variant_n_children (restored), ==, n);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) e = g_variant_get_child_value (expected, i);
      g_autoptr(GVariant) r = g_variant_get_child_value (restored, i);

      if (!g_variant_equal (e, r))
        {
          g_autofree char *et = g_variant_print (e, FALSE);
          g_autofree char *rt = g_variant_print (r, FALSE);

          g_test_message ("record %" G_GSIZE_FORMAT " acknowledged: %.300s", i, et);
          g_test_message ("record %" G_GSIZE_FORMAT " restored: %.300s", i, rt);
        }
      g_assert_true (g_variant_equal (e, r));
    }
}

typedef struct {
  HbHarness *h;
  guint      acked;      /* FinishRun answered with success, in order */
  guint      answered;   /* with anything */
  gboolean   killed;
  gboolean   order_broken;
} RunFlood;

typedef struct {
  RunFlood *flood;
  guint     index;
} RunCall;

static void
on_finish_run_reply (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  RunCall *call = user_data;
  RunFlood *flood = call->flood;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  flood->answered++;
  if (reply != NULL)
    {
      /* one connection: the replies come in the order of the calls */
      if (call->index != flood->acked)
        flood->order_broken = TRUE;
      flood->acked++;
      if (flood->acked == FLOOD_KILL_AFTER && !flood->killed)
        {
          hb_harness_signal_daemon (flood->h, SIGKILL);
          flood->killed = TRUE;
        }
    }
  g_free (call);
}

static gboolean
flood_answered (HbHarness *h,
                gpointer   data)
{
  return ((RunFlood *) data)->answered == FLOOD_RUNS;
}

/* A job's run records survive kill -9: each StartRun and FinishRun is
 * durable when it is answered (output in several scripts and past the
 * bound, failures with their exit status, more runs than are kept, a run
 * still open), and a run restored open can be finished and survives the
 * next kill -9 closed. FinishRun calls in flight at a kill: the records
 * restored are those of every call answered and perhaps of some of the
 * calls after them, in order, nothing else (the last RUNS_KEPT). */
static void
test_runs_survive_kill9 (void)
{
  g_autoptr(HbHarness) h = hb_harness_new ();
  g_autoptr(GVariant) expected = NULL;
  g_autoptr(GVariant) restored = NULL;
  g_autoptr(GVariant) last = NULL;
  GDBusConnection *connection;
  RunFlood flood = { 0 };
  const char *result = NULL;
  guint first;
  gsize n;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, crash_config);
  hb_harness_start_daemon (h, 0);
  g_variant_unref (hb_call_ok (h, NULL, "Register", g_variant_new ("(sa{sv})", "job", NULL), "()"));

  for (guint i = 0; i < RUNS_KEPT + 5; i++)
    {
      g_autoptr(GString) output = g_string_new (NULL);
      GVariantBuilder end;

      g_string_printf (output, "run %u: sauvegardé ✓ 完了 🎉\n", i);
      /* every third past the bound: the tail is kept */
      if (i % 3 == 0)
        while (output->len < RUN_OUTPUT_KEPT + 100)
          g_string_append (output, "ü€𝄞-");
      g_variant_builder_init (&end, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&end, "{sv}", "exit-status", g_variant_new_int32 ((gint32) (i % 4)));
      g_variant_builder_add (&end, "{sv}", "output", g_variant_new_string (output->str));
      g_variant_unref (hb_call_ok (h, NULL, "StartRun", g_variant_new ("(s)", "job"), "()"));
      g_variant_unref (hb_call_ok (h, NULL, "FinishRun", g_variant_new ("(sa{sv})", "job", &end), "()"));
    }
  g_variant_unref (hb_call_ok (h, NULL, "StartRun", g_variant_new ("(s)", "job"), "()"));
  expected = get_runs (h, "job");
  n = g_variant_n_children (expected);
  g_assert_cmpuint (n, ==, RUNS_KEPT);
  last = g_variant_get_child_value (expected, n - 1);
  g_assert_true (g_variant_lookup (last, "result", "&s", &result));
  g_assert_cmpstr (result, ==, "running");

  /* no flush, no lazy sync: killed right after the last answer */
  kill9_and_restart (h);
  restored = get_runs (h, "job");
  assert_same_runs (expected, restored);

  /* the run restored open is one: it ends, and that survives too */
  g_variant_unref (hb_call_ok (h, NULL, "FinishRun", g_variant_new_parsed ("('job', {'exit-status': <0>})"), "()"));
  g_clear_pointer (&expected, g_variant_unref);
  g_clear_pointer (&restored, g_variant_unref);
  g_clear_pointer (&last, g_variant_unref);
  expected = get_runs (h, "job");
  last = g_variant_get_child_value (expected, g_variant_n_children (expected) - 1);
  g_assert_true (g_variant_lookup (last, "result", "&s", &result));
  g_assert_cmpstr (result, ==, "success");
  kill9_and_restart (h);
  restored = get_runs (h, "job");
  assert_same_runs (expected, restored);

  /* a flood of FinishRun on one connection, killed after a few answers */
  g_variant_unref (hb_call_ok (h, NULL, "Register", g_variant_new ("(sa{sv})", "flood", NULL), "()"));
  connection = hb_harness_connect (h);
  flood.h = h;
  for (guint i = 0; i < FLOOD_RUNS; i++)
    {
      RunCall *call = g_new0 (RunCall, 1);
      g_autofree char *output = g_strdup_printf ("flood %u ✓", i);

      call->flood = &flood;
      call->index = i;
      g_dbus_connection_call (connection, HB_NAME, HB_PATH, HB_IFACE, "FinishRun",
                              g_variant_new_parsed ("(%s, {'output': <%s>})", "flood", output),
                              G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                              CALL_TIMEOUT_MS, NULL, on_finish_run_reply, call);
    }
  hb_harness_wait_until (h, flood_answered, &flood);
  g_assert_true (flood.killed);
  g_assert_false (flood.order_broken);
  {
    HbChild *daemon = h->daemon;
    int wait_status = hb_harness_wait_exit (h, daemon, HB_WAIT_MS);

    g_assert_true (WIFSIGNALED (wait_status));
  }
  hb_harness_start_daemon (h, 0);
  g_clear_pointer (&restored, g_variant_unref);
  restored = get_runs (h, "flood");
  /* the records of the first m calls were saved, m at least the number
   * acknowledged: the last RUNS_KEPT of them are restored, in order */
  n = g_variant_n_children (restored);
  g_assert_cmpuint (n, >, 0);
  {
    g_autoptr(GVariant) newest = g_variant_get_child_value (restored, n - 1);
    const char *output = NULL;
    guint m;

    g_assert_true (g_variant_lookup (newest, "output", "&s", &output));
    g_assert_true (g_str_has_prefix (output, "flood "));
    m = (guint) g_ascii_strtoull (output + strlen ("flood "), NULL, 10) + 1;
    g_test_message ("FinishRun: %u of %u calls acknowledged (the kill was sent at the %uth answer); "
                    "the first %u were saved", flood.acked, FLOOD_RUNS, FLOOD_KILL_AFTER, m);
    g_assert_cmpuint (m, >=, flood.acked);
    g_assert_cmpuint (m, <=, FLOOD_RUNS);
    g_assert_cmpuint (n, ==, MIN (m, RUNS_KEPT));
    first = m - (guint) n;
  }
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) run = g_variant_get_child_value (restored, i);
      g_autofree char *want = g_strdup_printf ("flood %" G_GSIZE_FORMAT " ✓", first + i);
      const char *output = NULL;

      g_assert_true (g_variant_lookup (run, "output", "&s", &output));
      g_assert_cmpstr (output, ==, want);
      g_assert_true (g_variant_lookup (run, "result", "&s", &result));
      g_assert_cmpstr (result, ==, "success");
    }
  /* and the first job's records are as they were */
  g_clear_pointer (&restored, g_variant_unref);
  restored = get_runs (h, "job");
  assert_same_runs (expected, restored);

  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_object_unref (connection);
}


/* GetHistory(id): the a(ts). */
static GVariant *
get_history (HbHarness  *h,
             const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetHistory", g_variant_new ("(s)", id), "(a(ts))");

  return g_variant_get_child_value (reply, 0);
}

static const char *
history_state (GVariant *history,
               gsize     i,
               guint64  *at)
{
  const char *state = NULL;

  g_variant_get_child (history, i, "(t&s)", at, &state);
  return g_intern_string (state);
}

/* The history of @id after a restart, against @before, its history at the
 * kill: the same entries, then ("unmonitored" from a time between the last
 * of them and the kill), then the restored @state at the restart. */
static void
assert_unmonitored_gap (HbHarness  *h,
                        const char *id,
                        GVariant   *before,
                        gint64      killed_at,
                        gint64      restarted_at,
                        const char *state)
{
  g_autoptr(GVariant) after = get_history (h, id);
  g_autofree char *text = g_variant_print (after, FALSE);
  gsize n = g_variant_n_children (before);
  guint64 last_at, gap_at, restored_at;

  g_test_message ("%s: %s", id, text);
  g_assert_cmpuint (g_variant_n_children (after), ==, n + 2);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) a = g_variant_get_child_value (before, i);
      g_autoptr(GVariant) b = g_variant_get_child_value (after, i);

      g_assert_true (g_variant_equal (a, b));
    }
  g_assert_true (history_state (after, n - 1, &last_at) == g_intern_string (state));
  g_assert_true (history_state (after, n, &gap_at) == g_intern_static_string ("unmonitored"));
  g_assert_true (history_state (after, n + 1, &restored_at) == g_intern_string (state));
  g_assert_cmpuint (gap_at, >=, last_at);
  g_assert_cmpuint (gap_at, <=, (guint64) killed_at);
  g_assert_cmpuint (restored_at, >=, (guint64) restarted_at);
}

/* The time nobody watched, and a pause, through kill -9: the restarted
 * daemon's history of each agent says "unmonitored" from before the kill
 * to the restart; an agent paused (with a reason) and tagged is restored
 * paused with its reason, its pause's time and its tags, and stays silent
 * past its stale threshold while an unpaused agent with a longer one goes
 * stale. */
static void
test_unmonitored_and_pause_survive_kill9 (void)
{
  g_autoptr(HbHarness) h = hb_harness_new ();
  g_autoptr(GVariant) held = NULL;
  g_autoptr(GVariant) watched_before = NULL;
  g_autoptr(GVariant) held_before = NULL;
  g_autoptr(GVariant) tags = NULL;
  const HbSignal *stale;
  guint64 paused_at;
  gint64 killed_at, restarted_at;
  guint cursor, index;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, crash_config);
  hb_harness_start_daemon (h, 0);
  /* "held" would go stale a second after the restart, "watched" two */
  g_variant_unref (hb_call_ok (h, NULL, "Register",
                               g_variant_new_parsed ("('watched', {'stale-after-usec': <uint64 2000000>})"), "()"));
  g_variant_unref (hb_call_ok (h, NULL, "Register",
                               g_variant_new_parsed ("('held', {'stale-after-usec': <uint64 1000000>,"
                                                     " 'tags': <['prod', 'db']>})"), "()"));
  g_variant_unref (hb_call_ok (h, NULL, "Pause",
                               g_variant_new_parsed ("('held', {'reason': <'disk swap, ticket 4711'>})"), "()"));
  held = hb_harness_get_agent (h, "held");
  g_assert_cmpstr (hb_dict_string (held, "state"), ==, "paused");
  paused_at = hb_dict_uint64 (held, "paused-at-usec");
  g_assert_cmpuint (paused_at, >, 0);
  g_clear_pointer (&held, g_variant_unref);
  watched_before = get_history (h, "watched");
  held_before = get_history (h, "held");

  /* no flush: killed right after the answers */
  killed_at = g_get_real_time ();
  hb_harness_signal_daemon (h, SIGKILL);
  {
    HbChild *daemon = h->daemon;
    int wait_status = hb_harness_wait_exit (h, daemon, HB_WAIT_MS);

    g_assert_true (WIFSIGNALED (wait_status));
    g_assert_cmpint (WTERMSIG (wait_status), ==, SIGKILL);
  }
  restarted_at = g_get_real_time ();
  cursor = hb_harness_signal_cursor (h);
  hb_harness_start_daemon (h, 0);

  assert_unmonitored_gap (h, "watched", watched_before, killed_at, restarted_at, "healthy");
  assert_unmonitored_gap (h, "held", held_before, killed_at, restarted_at, "paused");

  held = hb_harness_get_agent (h, "held");
  g_assert_cmpstr (hb_dict_string (held, "state"), ==, "paused");
  g_assert_cmpstr (hb_dict_string (held, "paused-reason"), ==, "disk swap, ticket 4711");
  g_assert_cmpuint (hb_dict_uint64 (held, "paused-at-usec"), ==, paused_at);
  g_assert_cmpuint (hb_dict_uint32 (held, "paused-by-uid"), ==, getuid ());
  g_assert_true (g_variant_lookup (held, "tags", "@as", &tags));
  {
    g_autofree const char **strv = g_variant_get_strv (tags, NULL);

    g_assert_cmpstrv (strv, ((const char *[]) { "db", "prod", NULL }));
  }

  /* silent: "watched" goes stale, "held" (a shorter threshold) did not */
  stale = hb_wait_signal (h, &cursor, "AgentStale", "watched", NULL, NULL);
  g_assert_nonnull (stale);
  g_assert_null (hb_harness_find_signal (h, 0, "AgentStale", "held", NULL, NULL, &index));
  g_assert_null (hb_harness_find_signal (h, 0, "AgentStateChanged", "held", "paused", NULL, &index));
  g_clear_pointer (&held, g_variant_unref);
  held = hb_harness_get_agent (h, "held");
  g_assert_cmpstr (hb_dict_string (held, "state"), ==, "paused");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/crash/kill9-during-flood", test_kill9_during_flood);
  g_test_add_func ("/crash/runs-survive-kill9", test_runs_survive_kill9);
  g_test_add_func ("/crash/unmonitored-and-pause-survive-kill9", test_unmonitored_and_pause_survive_kill9);
  return g_test_run ();
}

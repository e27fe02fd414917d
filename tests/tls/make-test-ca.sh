#!/bin/sh
# make-test-ca.sh DIR [IP...]: a throw-away certificate authority for tests
#
# Writes into DIR (created if missing), every key readable by its owner only:
#   ca.pem, ca-key.pem            the test CA (EC P-256, 2 days)
#   server.pem, server-key.pem    a server certificate for localhost,
#                                 127.0.0.1, ::1 and each IP given
#   server2.pem, server2-key.pem  a second one, same names, another key and
#                                 serial (to swap in on reload)
#   client.pem, client-key.pem    a client certificate (CN=hb-test-client)
#   rogue-ca.pem, rogue.pem, rogue-key.pem
#                                 another CA and a server certificate for the
#                                 same names signed by it (must be refused)
# Needs openssl(1). Certificates are valid for two days from now.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

dir=${1:?usage: make-test-ca.sh DIR [IP...]}
shift
mkdir -p "$dir"
umask 077
cd "$dir"

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for ip in "$@"; do
    san="$san,IP:$ip"
done

key () {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# ca NAME: a self-signed CA
ca () {
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -out "$1.pem" -days 2 -subj "/CN=heartbeatd test $1" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf NAME CA CN EXT: a certificate signed by CA
leaf () {
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$3" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

ca ca
leaf server ca localhost "$server_ext"
leaf server2 ca localhost "$server_ext"
leaf client ca hb-test-client "$client_ext"
ca rogue-ca
leaf rogue rogue-ca localhost "$server_ext"
rm -f ./*.srl
chmod 644 ./*.pem
chmod 600 ./*-key.pem

/* client-test-config.h: the heartbeatd.conf of the client tests: short
 * deadlines, and room for every agent they register.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

static const char client_test_config[] =
  "[monitor]\n"
  "check-interval=100ms\n"
  "stale-threshold=5s\n"
  "timeout-threshold=10min\n"
  "stale-warning-only-once=true\n"
  "\n"
  "[limits]\n"
  "agents-per-uid=64\n";

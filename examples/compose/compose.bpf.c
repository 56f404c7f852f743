// SPDX-License-Identifier: MIT
/* compose's kernel half is bootstrap's: exec and exit events in ring buffer rb. */
#include "../bootstrap/bootstrap.bpf.c"

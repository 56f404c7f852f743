/* SPDX-License-Identifier: MIT */
/* Shared by runqlat.bpf.c (BPF) and runqlat.c (wasm32). */
#ifndef RUNQLAT_H
#define RUNQLAT_H

/* hist[slot] counts wakeup->run latencies of [2^slot, 2^(slot+1)) us
 * (slot 0: 0 and 1 us); the last slot also takes everything above. */
#define MAX_SLOTS 26

#endif /* RUNQLAT_H */

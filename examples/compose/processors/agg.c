// SPDX-License-Identifier: MIT
/* agg: a processor component in C (the wasm-bpf:processor world) that
 * aggregates bootstrap events per command name: execs, exits and the
 * longest lifetime seen. It answers `none` to each event, and to an empty
 * event its summary as text (the guest prints it at the end). No libc
 * stdio: a processor has no WASI, and printf would import it. */
#include "wasm_bpf_processor.h"
#include "../../bootstrap/bootstrap.h"

#define MAX_COMMS 64

static struct comm_stats {
	char comm[TASK_COMM_LEN + 1];
	unsigned long execs, exits;
	unsigned long long longest_ms;
} stats[MAX_COMMS];
static int ncomms;
static unsigned long others; /* events of command names past MAX_COMMS */

int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error)
{
	(void)argv;
	if (argc) {
		*error = "agg takes no arguments";
		return 1;
	}
	return 0;
}

static struct comm_stats *find(const char *comm)
{
	int i;

	for (i = 0; i < ncomms; i++)
		if (!strncmp(stats[i].comm, comm, TASK_COMM_LEN))
			return &stats[i];
	if (ncomms == MAX_COMMS)
		return NULL;
	memcpy(stats[ncomms].comm, comm, TASK_COMM_LEN);
	return &stats[ncomms++];
}

/* Text output without stdio: strings left-aligned, numbers right-aligned. */
struct text {
	char *buf;
	size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n, int width, int right)
{
	int pad = width > (int)n ? width - (int)n : 0;

	if (t->len + n + (size_t)pad + 1 > t->cap)
		return;
	if (right)
		memset(t->buf + t->len, ' ', (size_t)pad), t->len += (size_t)pad;
	memcpy(t->buf + t->len, s, n), t->len += n;
	if (!right)
		memset(t->buf + t->len, ' ', (size_t)pad), t->len += (size_t)pad;
}

static void put_str(struct text *t, const char *s, int width)
{
	put(t, s, strnlen(s, TASK_COMM_LEN), width, 0);
}

static void put_num(struct text *t, unsigned long long v, int width)
{
	char digits[24];
	int i = sizeof(digits);

	do
		digits[--i] = (char)('0' + v % 10);
	while (v /= 10);
	put(t, digits + i, sizeof(digits) - (size_t)i, width, 1);
}

static int summary(uint8_t **out, size_t *out_len)
{
	struct text t = { malloc(128 + (size_t)ncomms * 64), 0, 128 + (size_t)ncomms * 64 };
	int i;

	if (!t.buf)
		return WASM_BPF_DROP;
	put_str(&t, "COMM", 16), put(&t, "  EXECS  EXITS  LONGEST_MS\n", 27, 0, 0);
	for (i = 0; i < ncomms; i++) {
		put_str(&t, stats[i].comm, 16);
		put_num(&t, stats[i].execs, 7);
		put_num(&t, stats[i].exits, 7);
		put_num(&t, stats[i].longest_ms, 12);
		put(&t, "\n", 1, 0, 0);
	}
	if (others) {
		put(&t, "(", 1, 0, 0), put_num(&t, others, 0);
		put(&t, " events of other commands)\n", 27, 0, 0);
	}
	*out = (uint8_t *)t.buf;
	*out_len = t.len;
	return WASM_BPF_REPLACE;
}

int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len)
{
	struct event e;
	struct comm_stats *s;

	if (len == 0)
		return summary(out, out_len);
	if (len != sizeof(e))
		return WASM_BPF_DROP;
	memcpy(&e, event, sizeof(e));
	s = find(e.comm);
	if (!s) {
		others++;
		return WASM_BPF_DROP;
	}
	if (e.exit_event) {
		s->exits++;
		if (e.duration_ns / 1000000 > s->longest_ms)
			s->longest_ms = e.duration_ns / 1000000;
	} else {
		s->execs++;
	}
	return WASM_BPF_DROP;
}

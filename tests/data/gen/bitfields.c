#include <stdio.h>
#include <string.h>
/* Bit patterns of each bitfield set to all ones, for tests/test_gen_types.py:
 * built for x86-64 with layouts.h and for wasm32 with the generated header. */
#include HDR
#define SHOW(T, f) do { T s; unsigned char *p = (unsigned char *)&s; memset(&s, 0, sizeof(s)); s.f = -1; \
	printf(#T "." #f ":"); for (size_t i = 0; i < sizeof(s); i++) printf("%02x", p[i]); printf("\n"); } while (0)
int main(void) {
	SHOW(struct tricky, a); SHOW(struct tricky, b); SHOW(struct tricky, big);
	SHOW(struct bits, f1); SHOW(struct bits, f2); SHOW(struct bits, f3); SHOW(struct bits, f4);
	SHOW(struct gaps, z); SHOW(struct gaps, d); SHOW(struct gaps, w); SHOW(struct gaps, q);
	return 0;
}

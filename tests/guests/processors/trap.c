/* trap: traps (unreachable) on every event. */
#include "wasm_bpf_processor.h"

int wasm_bpf_processor_init(int argc, const char *const *argv, const char **error)
{
	(void)argc, (void)argv, (void)error;
	return 0;
}

int wasm_bpf_process(const uint8_t *event, size_t len, uint8_t **out, size_t *out_len)
{
	(void)event, (void)len, (void)out, (void)out_len;
	__builtin_trap();
}

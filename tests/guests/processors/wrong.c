/* wrong: a component of another world (process: func(string) -> u32). */
#include <stdlib.h>
#include <stdint.h>

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old, size_t align, size_t size)
{
	(void)old;
	return size ? realloc(ptr, size) : (void *)align;
}

static uint8_t ok[12];

__attribute__((export_name("init")))
void *init(void *args, size_t n)
{
	(void)args, (void)n;
	return ok;
}

#ifdef WITH_PROCESS
__attribute__((export_name("process")))
uint32_t process(const char *s, size_t n)
{
	(void)s;
	return (uint32_t)n;
}
#endif

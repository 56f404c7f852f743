/* echo: copy stdin to stdout until EOF, then print "eof <bytes>" on stderr
 * and exit 0. No BPF. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char buf[4096];
	long total = 0;
	ssize_t n;

	while ((n = read(0, buf, sizeof(buf))) > 0) {
		if (write(1, buf, (size_t)n) != n)
			return 1;
		total += n;
	}
	fprintf(stderr, "eof %ld\n", total);
	return n < 0 ? 1 : 0;
}

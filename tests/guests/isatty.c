/* isatty: prints "stdout tty=<0|1> stderr tty=<0|1>" (what the guest's libc
 * believes, which decides how it buffers stdout) with plain printf, and
 * returns 0 (exit flushes it). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("stdout tty=%d stderr tty=%d\n", isatty(1), isatty(2));
	return 0;
}

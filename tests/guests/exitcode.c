/* exitcode [N | args...]: prints "hello"; if argv[1] is an integer exits
 * with exit(atoi(argv[1])), otherwise prints argv and environ, returns 0. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv)
{
	const char *a = argc > 1 ? argv[1] : "";
	int i;

	printf("hello\n");
	fflush(stdout);
	if (isdigit((unsigned char)a[0]) ||
	    (a[0] == '-' && isdigit((unsigned char)a[1])))
		exit(atoi(a));
	for (i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (i = 0; environ && environ[i]; i++)
		printf("env %s\n", environ[i]);
	fflush(stdout);
	return 0;
}

/* bench: a getc/putc filter (upper-cases ASCII letters, counts lines) over stdin. */
#include <stdio.h>

int main(void) {
    long lines = 0;
    int c;
    while ((c = getc(stdin)) != EOF) {
        if (c == '\n') lines++;
        putc(c >= 'a' && c <= 'z' ? c - 32 : c, stdout);
    }
    fprintf(stderr, "%ld lines\n", lines);
    return 0;
}

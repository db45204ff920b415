/* How the corpus starts an allexe in place of a native program: `exec -a NAME alley ALLEXE`,
 * NAME being the argv[0] this launcher was called by, and ALLEXE `<this file>.allexe`.
 *
 * Run through its `#!` line, an allexe gets the kernel's argv[0] (the script's full path), not
 * the caller's: coreutils' tests see it in every "Try 'seq --help'" message. An ALLVM system
 * registers allexes with binfmt_misc and its preserve-argv0 flag (allvm-binfmt); this launcher
 * does the same for one build tree, with no system configuration. alley, started under another
 * name than its own, gives the program that name. ALLEY is set when compiling. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char allexe[PATH_MAX + sizeof ".allexe"];
    ssize_t n = readlink("/proc/self/exe", allexe, PATH_MAX);
    if (n < 0) {
        perror("launcher: /proc/self/exe");
        return 127;
    }
    memcpy(allexe + n, ".allexe", sizeof ".allexe");
    char *args[argc + 2];
    args[0] = argv[0];
    args[1] = allexe;
    for (int i = 1; i <= argc; i++) /* argv[argc] is the terminating NULL */
        args[1 + i] = argv[i];
    execv(ALLEY, args);
    perror("launcher: " ALLEY);
    return 127;
}

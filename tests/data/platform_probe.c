/* A program that reports what the platform gives it, one check per argv[1]. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;
extern void *__dso_handle;

__attribute__((constructor(102))) static void ctor_102(void) { puts("ctor 102"); }
__attribute__((constructor(101))) static void ctor_101(void) { puts("ctor 101"); }
__attribute__((constructor)) static void ctor_default(void) { puts("ctor default"); }
__attribute__((destructor)) static void dtor(void) { puts("dtor"); }
static void at_exit(void) { puts("atexit"); }

int main(int argc, char **argv, char **envp) {
    atexit(at_exit);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "args")) {
        for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    } else if (!strcmp(mode, "layout")) {
        printf("envp==&argv[argc+1]: %d\nenvp==environ: %d\nargv[argc]==NULL: %d\n",
               envp == &argv[argc + 1], envp == environ, argv[argc] == NULL);
    } else if (!strcmp(mode, "env")) {
        for (char **e = envp; *e; e++) printf("%s\n", *e);
    } else if (!strcmp(mode, "exit")) {
        exit(atoi(argv[2]));
    } else if (!strcmp(mode, "return")) {
        return atoi(argv[2]);
    } else if (!strcmp(mode, "dl")) {
        void *handle = dlopen("libm.so.6", RTLD_NOW);
        printf("dlopen: %s\n", handle ? "ok" : dlerror());
        void *sym = dlsym(RTLD_DEFAULT, "no_such_symbol");
        printf("dlsym: %s\n", sym ? "found" : dlerror());
    } else if (!strcmp(mode, "nullptr")) {
        printf("%p\n", (void *)0);
    } else if (!strcmp(mode, "dso")) {
        printf("__dso_handle: %s\n", &__dso_handle ? "defined" : "null");
    } else if (!strcmp(mode, "signals")) {
        struct sigaction sa;
        sigaction(SIGPIPE, NULL, &sa);
        printf("SIGPIPE default: %d\n", sa.sa_handler == SIG_DFL);
        sigaction(SIGINT, NULL, &sa);
        printf("SIGINT default: %d\n", sa.sa_handler == SIG_DFL);
    }
    return 0;
}

/* threads with TLS, setjmp/longjmp, signals (a handler that siglongjmps out), exit status. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Thread_local int per_thread = 100;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long shared;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (int i = 0; i < 10000; i++) {
        per_thread++;
        pthread_mutex_lock(&lock);
        shared += id;
        pthread_mutex_unlock(&lock);
    }
    return (void *)(long)per_thread;
}

static jmp_buf plain;
static sigjmp_buf from_signal;
static volatile sig_atomic_t caught;

static void deep(int depth) {
    if (depth == 0) longjmp(plain, 7);
    deep(depth - 1);
}

static void on_signal(int sig) {
    caught = sig;
    siglongjmp(from_signal, 1);
}

int main(void) {
    pthread_t threads[4];
    for (long i = 0; i < 4; i++) pthread_create(&threads[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *result;
        pthread_join(threads[i], &result);
        printf("thread %d: tls %ld\n", i, (long)result);
    }
    printf("shared %ld, main's tls %d\n", shared, per_thread);

    int value = setjmp(plain);
    if (value == 0) deep(50);
    printf("longjmp returned %d\n", value);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    if (sigsetjmp(from_signal, 1) == 0) {
        raise(SIGUSR1);
        puts("not reached");
    }
    printf("caught signal %d (%s)\n", caught, strsignal(caught));
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    printf("SIGUSR1 blocked after siglongjmp: %d\n", sigismember(&mask, SIGUSR1));
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    pipe(fds);
    close(fds[0]);
    printf("write to a closed pipe: %zd\n", write(fds[1], "x", 1));
    fflush(stdout);
    _exit(5);
}

/* Floating-point environment and long double: libc's math keeps its strictfp semantics. */
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    volatile double third = argc / 3.0, x = argc * 2.5;
    static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
    static const char *names[] = {"nearest", "upward", "downward", "towardzero"};
    for (int i = 0; i < 4; i++) {
        fesetround(modes[i]);
        printf("%-10s rint(2.5)=%g nearbyint(-2.5)=%g lrint(3.5)=%ld %.20f %.20Lf\n",
               names[i], rint(x), nearbyint(-x), lrint(x + 1), third, (long double)argc / 3);
        printf("%-10s strtod(0.1)=%.25f sqrt(2)=%.20f\n", names[i], strtod("0.1", NULL),
               sqrt(2.0 * argc));
    }
    fesetround(FE_TONEAREST);
    feclearexcept(FE_ALL_EXCEPT);
    volatile double zero = argc - 1;
    volatile double r = 1.0 / zero;
    printf("1/0 = %g, divbyzero raised: %d, inexact raised: %d\n", r,
           !!fetestexcept(FE_DIVBYZERO), !!fetestexcept(FE_INEXACT));
    feclearexcept(FE_ALL_EXCEPT);
    r = log(zero);
    printf("log(0) = %g, divbyzero: %d\n", r, !!fetestexcept(FE_DIVBYZERO));

    volatile long double l = argc * 0.5L;
    printf("acosl %.18Lg asinl %.18Lg atanl %.18Lg\n", acosl(l), asinl(l), atanl(l));
    printf("expl %.18Lg logl %.18Lg log2l %.18Lg log10l %.18Lg\n", expl(l), logl(l + 1),
           log2l(l + 3), log10l(l + 99));
    printf("sqrtl %.18Lg powl %.18Lg fmodl %.18Lg cbrtl %.18Lg\n", sqrtl(l + 1.5), powl(l + 1, 40),
           fmodl(l * 1000, 7), cbrtl(l * 54));
    printf("sin %.17g cos %.17g tan %.17g exp %.17g pow %.17g fmod %.17g\n", sin(x), cos(x),
           tan(x), exp(x), pow(x, 0.5 + argc), fmod(x * 100, 3));
    printf("sinf %.9g expf %.9g ldexp %g frexp-free %g\n", sinf((float)x), expf((float)x),
           ldexp(x, 10), floor(-x));
    return 0;
}

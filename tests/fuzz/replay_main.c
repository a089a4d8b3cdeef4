/* A main() for the libFuzzer drivers in ordinary (gcc) builds, so that every
 * driver is compiled with the project's warnings and run under ASan/UBSan by
 * ctest on every CI run, not only when someone builds with clang.
 *
 * It is not a coverage-guided fuzzer: it replays each seed (files given on the
 * command line, directories expanded) and then a fixed number of mutants of the
 * seeds (bit flips, interesting bytes, inserted / deleted / duplicated spans,
 * truncation, splices of two seeds), from a fixed PRNG seed so that a failure
 * reproduces with the same command. Every input sits in a heap block of exactly
 * its size, so that ASan sees a read one past its end.
 *
 *   replay_fuzz_http [-n MUTANTS] [-s SEED] [-v] PATH...
 *
 * A crash or trap aborts the process (ctest reports the test failed); before
 * running each mutant the runner writes it to $ES_FUZZ_CRASH_FILE if set, so the
 * input that killed it can be fed to the real libFuzzer driver. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REPLAY_MAX_SEEDS = 4096, REPLAY_MAX_INPUT = 1 << 20 };

typedef struct seed {
    uint8_t *data;
    size_t len;
} seed;

static seed seeds[REPLAY_MAX_SEEDS];
static size_t nseeds;
static uint64_t rng_state;

/* splitmix64: small, fast, and the same sequence on every machine */
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

static void add_seed(const uint8_t *data, size_t len)
{
    if (nseeds == REPLAY_MAX_SEEDS || len > REPLAY_MAX_INPUT)
        return;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        perror("malloc");
        exit(2);
    }
    if (len)
        memcpy(copy, data, len);
    seeds[nseeds].data = copy;
    seeds[nseeds].len = len;
    nseeds++;
}

static void load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(2);
    }
    static uint8_t buf[REPLAY_MAX_INPUT];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    add_seed(buf, n);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        load_file(path);
        return;
    }
    /* sorted, so the mutants do not depend on the directory's order */
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(2);
    }
    char *names[REPLAY_MAX_SEEDS];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < REPLAY_MAX_SEEDS) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = strlen(path) + strlen(de->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n]) {
            perror("malloc");
            exit(2);
        }
        snprintf(names[n], len, "%s/%s", path, de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    for (size_t i = 0; i < n; i++) {
        load_path(names[i]);
        free(names[i]);
    }
}

static void run(const uint8_t *data, size_t len)
{
    /* exact-size heap block: ASan catches a read past the end */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        perror("malloc");
        exit(2);
    }
    if (len)
        memcpy(copy, data, len);
    const char *crash = getenv("ES_FUZZ_CRASH_FILE");
    if (crash) {
        FILE *f = fopen(crash, "wb");
        if (f) {
            fwrite(copy, 1, len, f);
            fclose(f);
        }
    }
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

static const uint8_t interesting[] = {0,   0xff, 0x7f, 0x80, '"', '\\', '{', '}',
                                      '[', ']',  ':',  ',',  '0', '9',  '-', '.',
                                      'e', '\r', '\n', ' ',  '/', '*',  '%', '='};

/* One mutant of seed s into out (capacity cap); returns its length. */
static size_t mutate(const seed *s, uint8_t *out, size_t cap)
{
    size_t len = s->len < cap ? s->len : cap;
    memcpy(out, s->data, len);
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; r++) {
        switch (below(8)) {
        case 0: /* flip one bit */
            if (len)
                out[below(len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* an interesting byte */
            if (len)
                out[below(len)] = interesting[below(sizeof interesting)];
            break;
        case 2: { /* insert a few random or interesting bytes */
            size_t at = below(len + 1), n = 1 + below(8);
            if (len + n > cap)
                break;
            memmove(out + at + n, out + at, len - at);
            for (size_t i = 0; i < n; i++)
                out[at + i] = (rng() & 1) ? (uint8_t)rng() : interesting[below(sizeof interesting)];
            len += n;
            break;
        }
        case 3: { /* delete a span */
            if (!len)
                break;
            size_t at = below(len), n = 1 + below(len - at);
            if (n > 16 && (rng() & 3))
                n = 1 + below(16);
            memmove(out + at, out + at + n, len - at - n);
            len -= n;
            break;
        }
        case 4: { /* duplicate a span in place (nesting, repeated headers) */
            if (!len)
                break;
            size_t at = below(len), n = 1 + below(len - at);
            if (len + n > cap)
                break;
            memmove(out + at + n, out + at, len - at);
            len += n;
            break;
        }
        case 5: /* truncate */
            len = below(len + 1);
            break;
        case 6: { /* splice: our head, another seed's tail */
            const seed *o = &seeds[below(nseeds)];
            size_t at = below(len + 1), from = below(o->len + 1), n = o->len - from;
            if (at + n > cap)
                n = cap - at;
            memcpy(out + at, o->data + from, n);
            len = at + n;
            break;
        }
        default: { /* overwrite a span with a copy from elsewhere in the input */
            if (len < 2)
                break;
            size_t src = below(len), dst = below(len), n = 1 + below(8);
            if (src + n > len)
                n = len - src;
            if (dst + n > len)
                n = len - dst;
            memmove(out + dst, out + src, n);
            break;
        }
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    unsigned long mutants = 2000;
    uint64_t seed_value = 1;
    int verbose = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            mutants = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seed_value = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else {
            fprintf(stderr, "usage: %s [-n MUTANTS] [-s SEED] [-v] PATH...\n", argv[0]);
            return 2;
        }
    }
    for (; i < argc; i++)
        load_path(argv[i]);
    add_seed((const uint8_t *)"", 0); /* the empty input is always a case */
    rng_state = seed_value;

    for (size_t k = 0; k < nseeds; k++)
        run(seeds[k].data, seeds[k].len);
    size_t cap = 4096;
    for (size_t k = 0; k < nseeds; k++)
        if (seeds[k].len * 2 + 64 > cap)
            cap = seeds[k].len * 2 + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        perror("malloc");
        return 2;
    }
    for (unsigned long m = 0; m < mutants; m++) {
        size_t len = mutate(&seeds[m % nseeds], buf, cap);
        if (verbose)
            fprintf(stderr, "mutant %lu: %zu bytes\n", m, len);
        run(buf, len);
    }
    free(buf);
    for (size_t k = 0; k < nseeds; k++)
        free(seeds[k].data);
    printf("%s: %zu seeds, %lu mutants, no crash (seed %llu)\n", argv[0], nseeds, mutants,
           (unsigned long long)seed_value);
    return 0;
}

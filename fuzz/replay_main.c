/* replay_main.c: runs a fuzz target's LLVMFuzzerTestOneInput over files and
 * directories (the committed seed corpus) without libFuzzer, so every normal
 * and sanitizer test run replays the corpus with gcc too. Not a fuzzer. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Seeds are small by design; a bigger file is a mistake in the corpus. */
#define REPLAY_MAX_FILE (1u << 20)

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (fp == NULL) {
        perror(path);
        return -1;
    }
    buf = malloc(REPLAY_MAX_FILE);
    if (buf == NULL) {
        fclose(fp);
        return -1;
    }
    n = fread(buf, 1, REPLAY_MAX_FILE, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            if (dir == NULL) {
                perror(argv[i]);
                return 1;
            }
            while ((de = readdir(dir)) != NULL) {
                char path[4096];
                if (de->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
                if (replay_file(path) != 0) {
                    closedir(dir);
                    return 1;
                }
                files++;
            }
            closedir(dir);
        } else {
            if (replay_file(argv[i]) != 0)
                return 1;
            files++;
        }
    }
    printf("replayed %d inputs\n", files);
    return files > 0 ? 0 : 1;
}

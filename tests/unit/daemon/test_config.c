/* test_config.c: the settings table: every key parses from file, env and
 * flag with flags > env > file; bad values name the key; the example config
 * file documents exactly the table's keys with their defaults. */
#include <check.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* argv entries from literals (-Wwrite-strings makes them const). */
#define A(s) ((char *)(uintptr_t)(s))

/* A valid non-default value for each type, and the value it must become. */
static const char *sample(const config_key *k)
{
    switch (k->type) {
    case CFG_ADDR:
        return "127.0.0.9:1234";
    case CFG_UINT: {
        /* default + 1: in range, and keeps cross-key rules (backoff) valid */
        static char num[32];
        snprintf(num, sizeof num, "%llu", strtoull(k->def, NULL, 10) + 1);
        return num;
    }
    case CFG_BOOL:
        return "true";
    case CFG_LIST:
        return "https://a.example";
    case CFG_LEVEL:
        return "debug";
    case CFG_STR:
        break;
    }
    return "some-value";
}

static void check_value(const proxy_config *c, const config_key *k, const char *want)
{
    const char *base = (const char *)c + k->offset;
    switch (k->type) {
    case CFG_STR:
    case CFG_ADDR:
    case CFG_LEVEL:
        ck_assert_msg(strcmp(*(char *const *)(const void *)base, want) == 0, "%s = %s, want %s",
                      k->name, *(char *const *)(const void *)base, want);
        break;
    case CFG_UINT:
        ck_assert_msg(*(const uint64_t *)(const void *)base == strtoull(want, NULL, 10), "%s",
                      k->name);
        break;
    case CFG_BOOL:
        ck_assert_msg(*(const bool *)(const void *)base == (strcmp(want, "true") == 0), "%s",
                      k->name);
        break;
    case CFG_LIST: {
        const config_list *l = (const config_list *)(const void *)base;
        ck_assert_msg(l->n == 1 && strcmp(l->v[0], want) == 0, "%s", k->name);
        break;
    }
    }
}

static void flag_of(const config_key *k, char *out, size_t cap)
{
    snprintf(out, cap, "--%s", k->name);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

static void env_of(const config_key *k, const char *v, char *out, size_t cap)
{
    int n = snprintf(out, cap, "RSTMDB_PROXY_");
    for (const char *p = k->name; *p; p++)
        out[n++] = (char)toupper((unsigned char)*p);
    snprintf(out + n, cap - (size_t)n, "=%s", v);
}

START_TEST(defaults_are_valid)
{
    size_t n;
    const config_key *keys = config_keys(&n);
    proxy_config c;
    config_init(&c);
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == CFG_LIST)
            continue;
        check_value(&c, &keys[i], keys[i].def);
    }
    ck_assert_str_eq(c.listen, "127.0.0.1:7480");
    ck_assert_str_eq(c.upstream, "127.0.0.1:7401");
    ck_assert_uint_eq(c.max_body_bytes, 1048576);
    ck_assert_uint_eq(c.sse_heartbeat_ms, 15000);
    config_error e;
    ck_assert_int_eq(config_validate(&c, &e), 0);
    config_free(&c);
}
END_TEST

START_TEST(every_key_from_file_env_flag)
{
    size_t n;
    const config_key *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const config_key *k = &keys[i];
        if (!strcmp(k->name, "upstream_cert") || !strcmp(k->name, "upstream_key"))
            continue; /* only valid together: tested below */
        const char *v = sample(k);
        char text[256];
        config_error e;
        proxy_config c;
        /* file */
        config_init(&c);
        snprintf(text, sizeof text, "# comment\n  %s =  %s  \n", k->name, v);
        ck_assert_msg(config_parse_text(&c, text, "test.conf", &e) == 0, "%s: %s", k->name, e.msg);
        check_value(&c, k, v);
        config_free(&c);
        /* env */
        char env[256];
        env_of(k, v, env, sizeof env);
        char *envp[] = {env, NULL};
        char *argv0[] = {A("p"), NULL};
        config_action act;
        config_init(&c);
        ck_assert_msg(config_load(&c, 1, argv0, envp, &act, NULL, 0, &e) == 0, "%s: %s", env,
                      e.msg);
        check_value(&c, k, v);
        config_free(&c);
        /* flag */
        char flag[96];
        flag_of(k, flag, sizeof flag);
        char *argv[] = {A("p"), flag, A(v), NULL};
        config_init(&c);
        ck_assert_msg(config_load(&c, 3, argv, NULL, &act, NULL, 0, &e) == 0, "%s: %s", flag,
                      e.msg);
        check_value(&c, k, v);
        ck_assert_int_eq(act, CONFIG_RUN);
        config_free(&c);
    }
}
END_TEST

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/rstmdb-proxy-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(precedence_flag_env_file)
{
    char *path = write_tmp("pool_size = 3\nrequest_timeout_ms = 111\nlog_level = warn\n"
                           "token = file-a\ntoken = file-b\n");
    char env1[] = "RSTMDB_PROXY_POOL_SIZE=4";
    char env2[] = "RSTMDB_PROXY_REQUEST_TIMEOUT_MS=222";
    char env3[] = "RSTMDB_PROXY_BIN=/ignored/unrelated"; /* unknown RSTMDB_PROXY_* is not a key */
    char *envp[] = {env1, env2, env3, NULL};
    char *argv[] = {A("p"),       A("--config"), path, A("--pool-size=5"),
                    A("--token"), A("flag-a"),   NULL};
    proxy_config c;
    config_init(&c);
    config_action act;
    config_error e;
    char used[256];
    ck_assert_int_eq(config_load(&c, 6, argv, envp, &act, used, sizeof used, &e), 0);
    ck_assert_str_eq(used, path);
    ck_assert_uint_eq(c.pool_size, 5);            /* flag */
    ck_assert_uint_eq(c.request_timeout_ms, 222); /* env */
    ck_assert_str_eq(c.log_level, "warn");        /* file */
    ck_assert_uint_eq(c.token.n, 1);              /* a flag list replaces the file's */
    ck_assert_str_eq(c.token.v[0], "flag-a");
    config_free(&c);

    /* Without the flag, the file's list: repeated keys and commas both append. */
    char *path2 = write_tmp("cors_origin = https://a.example, https://b.example\n"
                            "cors_origin = https://c.example\n");
    char *argv2[] = {A("p"), A("--config"), path2, NULL};
    config_init(&c);
    ck_assert_int_eq(config_load(&c, 3, argv2, NULL, &act, NULL, 0, &e), 0);
    ck_assert_uint_eq(c.cors_origin.n, 3);
    ck_assert_str_eq(c.cors_origin.v[2], "https://c.example");
    config_free(&c);
    unlink(path);
    unlink(path2);
}
END_TEST

static void expect_bad(int argc, char **argv, const char *key)
{
    proxy_config c;
    config_init(&c);
    config_action act;
    config_error e;
    ck_assert_int_eq(config_load(&c, argc, argv, NULL, &act, NULL, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, key) != NULL, "error \"%s\" does not name %s", e.msg, key);
    config_free(&c);
}

START_TEST(bad_values_name_the_key)
{
    char *a1[] = {A("p"), A("--pool-size"), A("x"), NULL};
    expect_bad(3, a1, "pool_size");
    char *a2[] = {A("p"), A("--pool-size"), A("0"), NULL};
    expect_bad(3, a2, "pool_size");
    char *a3[] = {A("p"), A("--max-body-bytes=-1"), NULL};
    expect_bad(2, a3, "max_body_bytes");
    char *a4[] = {A("p"), A("--listen"), A("nohost"), NULL};
    expect_bad(3, a4, "listen");
    char *a5[] = {A("p"), A("--upstream-tls=maybe"), NULL};
    expect_bad(2, a5, "upstream_tls");
    char *a6[] = {A("p"), A("--log-level"), A("loud"), NULL};
    expect_bad(3, a6, "log_level");
    char *a7[] = {A("p"), A("--upstream-cert"), A("/c.pem"), NULL};
    expect_bad(3, a7, "upstream_key");
    char *a8[] = {A("p"), A("--no-such-flag"), NULL};
    expect_bad(2, a8, "--no-such-flag");
    char *a9[] = {A("p"), A("--cors-origin"), A("ftp://x"), NULL};
    expect_bad(3, a9, "cors_origin");
    char *a10[] = {A("p"), A("--listen"), NULL};
    expect_bad(2, a10, "listen");
    char *a13[] = {A("p"), A("--dns-server"), A("dns.example:53"), NULL};
    expect_bad(3, a13, "dns_server");
    char *path = write_tmp("pool_size = 2\nbogus_key = 1\n");
    char *a11[] = {A("p"), A("--config"), path, NULL};
    expect_bad(3, a11, "bogus_key");
    unlink(path);
    path = write_tmp("sse_heartbeat_ms = 1\n");
    char *a12[] = {A("p"), A("--config"), path, NULL};
    expect_bad(3, a12, "sse_heartbeat_ms");
    unlink(path);
}
END_TEST

START_TEST(actions)
{
    proxy_config c;
    config_action act;
    config_error e;
    char *a1[] = {A("p"), A("--help"), NULL};
    config_init(&c);
    ck_assert_int_eq(config_load(&c, 2, a1, NULL, &act, NULL, 0, &e), 0);
    ck_assert_int_eq(act, CONFIG_HELP);
    config_free(&c);
    char *a2[] = {A("p"), A("--check-config"), A("--token"), A("sekrit"), NULL};
    config_init(&c);
    ck_assert_int_eq(config_load(&c, 4, a2, NULL, &act, NULL, 0, &e), 0);
    ck_assert_int_eq(act, CONFIG_CHECK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_effective(f, &c);
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "sekrit")); /* secrets redacted */
    ck_assert_ptr_nonnull(strstr(buf, "token = <redacted>"));
    ck_assert_ptr_nonnull(strstr(buf, "listen = 127.0.0.1:7480"));
    free(buf);
    config_free(&c);
    /* --help mentions every flag and env var */
    f = open_memstream(&buf, &len);
    config_print_help(f, "rstmdb-proxy");
    fclose(f);
    size_t n;
    const config_key *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char flag[96], env[128];
        flag_of(&keys[i], flag, sizeof flag);
        env_of(&keys[i], "", env, sizeof env);
        env[strlen(env) - 1] = '\0';
        ck_assert_msg(strstr(buf, flag) && strstr(buf, env), "%s missing from --help", flag);
    }
    free(buf);
}
END_TEST

START_TEST(example_file_matches_table)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *p = strstr(path, "tests/unit/daemon/");
    ck_assert_ptr_nonnull(p);
    strcpy(p, "config/rstmdb-proxy.conf");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t n;
    const config_key *keys = config_keys(&n);
    bool seen[128] = {false};
    char line[1024];
    /* Every "# key = default" line names a table key with its default, and
     * uncommented the whole file still loads (and yields the defaults). */
    char *uncommented = calloc(1, 65536);
    while (fgets(line, sizeof line, f)) {
        char key[64], val[512] = "";
        line[strcspn(line, "\n")] = '\0';
        char prefix[96];
        int got = sscanf(line, "# %63[a-z_] = %511[^\n]", key, val);
        snprintf(prefix, sizeof prefix, "# %s =", got >= 1 ? key : "");
        if (got >= 1 && strncmp(line, prefix, strlen(prefix)) == 0) {
            const config_key *k = config_find(key);
            ck_assert_msg(k != NULL, "example file documents unknown key %s", key);
            ck_assert_msg(strcmp(val, k->def) == 0, "%s: example says \"%s\", table \"%s\"", key,
                          val, k->def);
            seen[k - keys] = true;
            strcat(uncommented, line + 2);
            strcat(uncommented, "\n");
        } else {
            ck_assert_msg(line[0] == '#' || line[0] == '\0', "unexpected line: %s", line);
        }
    }
    fclose(f);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(seen[i], "key %s is not documented in %s", keys[i].name, path);
    proxy_config c;
    config_init(&c);
    config_error e;
    ck_assert_msg(config_parse_text(&c, uncommented, "example", &e) == 0, "%s", e.msg);
    ck_assert_str_eq(c.listen, "127.0.0.1:7480");
    config_free(&c);
    free(uncommented);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_are_valid);
    tcase_add_test(tc, every_key_from_file_env_flag);
    tcase_add_test(tc, precedence_flag_env_file);
    tcase_add_test(tc, bad_values_name_the_key);
    tcase_add_test(tc, actions);
    tcase_add_test(tc, example_file_matches_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

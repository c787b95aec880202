/* main.c: rstmdb-testd's program: the flag table, engine and server set-up,
 * the "listening on" line, and a clean stop on SIGTERM/SIGINT. All mutable
 * state lives in main()'s frame; nothing here speaks the protocol. */
#include "engine.h"
#include "fault.h"
#include "logmsg.h"
#include "server.h"

#include <rstmdb/frame.h>

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define TESTD_VERSION    "0.1.0"
#define TESTD_MAX_TOKENS 64

typedef enum opt_type {
    OPT_STRING, /* takes a value */
    OPT_UINT,   /* takes a decimal value within [min, max] */
    OPT_LIST,   /* takes a value; may repeat */
    OPT_BOOL    /* no value */
} opt_type;

typedef enum opt_id {
    O_LISTEN,
    O_CONTROL,
    O_TOKEN,
    O_TOKEN_HASH,
    O_TLS_CERT,
    O_TLS_KEY,
    O_TLS_CLIENT_CA,
    O_MAX_FRAME,
    O_MAX_VERSIONS,
    O_WAL_SEGMENT,
    O_ALLOW_FLUSH_ALL,
    O_COMPAT,
    O_IDLE,
    O_MAX_CONNS,
    O_EVQ_MAX,
    O_EVQ_BYTES,
    O_SNDBUF,
    O_F_DELAY,
    O_F_CLOSE_AFTER,
    O_F_GARBLE_EVERY,
    O_F_HANG,
    O_F_REFUSE,
    O_HELP,
    O_VERSION,
    O_COUNT
} opt_id;

/* The one declarative table: parsing and --help both come from it. */
static const struct opt {
    opt_id id;
    const char *name;
    opt_type type;
    const char *arg;
    unsigned long long min, max;
    const char *help;
} OPTS[] = {
    {O_LISTEN, "--listen", OPT_STRING, "HOST:PORT", 0, 0,
     "address to serve RCPX on (default 127.0.0.1:7401; port 0 = a free port; [::1]:0 for IPv6)"},
    {O_CONTROL, "--control", OPT_STRING, "HOST:PORT|unix:PATH", 0, 0,
     "control channel for fault knobs (tests only); prints 'control on ADDR'"},
    {O_TOKEN, "--token", OPT_LIST, "TOKEN", 0, 0,
     "accept this bearer token (stored as its SHA-256); turns auth on; repeatable"},
    {O_TOKEN_HASH, "--token-hash", OPT_LIST, "HEX", 0, 0,
     "accept a token by its hex SHA-256 (compared exactly, lowercase); turns auth on; repeatable"},
    {O_TLS_CERT, "--tls-cert", OPT_STRING, "FILE", 0, 0,
     "serve TLS with this PEM certificate chain"},
    {O_TLS_KEY, "--tls-key", OPT_STRING, "FILE", 0, 0, "PEM private key for --tls-cert"},
    {O_TLS_CLIENT_CA, "--tls-client-ca", OPT_STRING, "FILE", 0, 0,
     "require client certificates signed by this PEM CA (mTLS)"},
    {O_MAX_FRAME, "--max-frame-bytes", OPT_UINT, "N", 1, RSTMDB_FRAME_MAX_PAYLOAD,
     "largest request payload accepted (default 16777216); larger frames close the connection"},
    {O_MAX_VERSIONS, "--max-machine-versions", OPT_UINT, "N", 0, UINT32_MAX,
     "versions kept per machine, 0 = unlimited (default 0)"},
    {O_WAL_SEGMENT, "--wal-segment-bytes", OPT_UINT, "N", 0, 1ull << 40,
     "WAL segment size for offset packing, 0 = 64 MiB (default 0)"},
    {O_ALLOW_FLUSH_ALL, "--allow-flush-all", OPT_BOOL, NULL, 0, 0, "enable FLUSH_ALL"},
    {O_COMPAT, "--compat", OPT_STRING, "0.1|0.3", 0, 0,
     "answer as rstmdb 0.1.1 or as 0.3.0 (built without hot backup) (default 0.3)"},
    {O_IDLE, "--idle-timeout-secs", OPT_UINT, "N", 0, 86400,
     "close connections quiet this long, 0 = never (default 300)"},
    {O_MAX_CONNS, "--max-connections", OPT_UINT, "N", 1, 100000,
     "connections served at once; extra ones are closed at accept (default 1000)"},
    {O_EVQ_MAX, "--event-queue", OPT_UINT, "N", 1, 1000000,
     "events queued per slow consumer before the oldest are dropped (default 256)"},
    {O_EVQ_BYTES, "--event-queue-bytes", OPT_UINT, "N", 1024, 1ull << 32,
     "bytes of events queued per slow consumer (default 1048576)"},
    {O_SNDBUF, "--socket-sndbuf", OPT_UINT, "BYTES", 0, 1u << 30,
     "fixed SO_SNDBUF for client sockets (small = slow consumers sooner), 0 = kernel default"},
    {O_F_DELAY, "--fault-delay-ms", OPT_UINT, "MS", 0, 600000,
     "fault: hold every request MS ms before answering"},
    {O_F_CLOSE_AFTER, "--fault-close-after", OPT_UINT, "N", 0, UINT32_MAX,
     "fault: close each connection after answering N requests"},
    {O_F_GARBLE_EVERY, "--fault-garble-every", OPT_UINT, "N", 0, UINT32_MAX,
     "fault: corrupt the CRC of every Nth response (server-wide count)"},
    {O_F_HANG, "--fault-hang", OPT_BOOL, NULL, 0, 0, "fault: read requests, never answer"},
    {O_F_REFUSE, "--fault-refuse", OPT_BOOL, NULL, 0, 0,
     "fault: close every new connection at once"},
    {O_HELP, "--help", OPT_BOOL, NULL, 0, 0, "print this help and exit"},
    {O_VERSION, "--version", OPT_BOOL, NULL, 0, 0, "print the version and exit"},
};

typedef struct options {
    const char *str[O_COUNT];
    unsigned long long num[O_COUNT];
    bool set[O_COUNT];
    const char *tokens[TESTD_MAX_TOKENS];
    size_t ntokens;
    const char *hashes[TESTD_MAX_TOKENS];
    size_t nhashes;
} options;

static void usage(FILE *f)
{
    size_t i;
    fprintf(f, "usage: rstmdb-testd [options]\n"
               "An in-memory rstmdb server (RCPX protocol) for tests.\n\n");
    for (i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", OPTS[i].name, OPTS[i].arg ? " " : "",
                 OPTS[i].arg ? OPTS[i].arg : "");
        fprintf(f, "  %-34s %s\n", left, OPTS[i].help);
    }
    fprintf(f, "\nOn start it prints 'listening on HOST:PORT' (and 'control on ADDR') on stdout;\n"
               "logs go to stderr. SIGTERM/SIGINT stop it (exit 0). Bad flags exit 2.\n");
}

/* Print "rstmdb-testd: <message naming the flag> (see --help)"; returns exit status 2. */
static int bad_flag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_flag(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rstmdb-testd: %s (see --help)\n", msg);
    return 2;
}

static bool parse_ull(const char *s, unsigned long long *v)
{
    char *end;
    if (s == NULL || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool is_hex64(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return i == 64;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct opt *op = NULL;
        const char *val = NULL;
        size_t k;

        for (k = 0; k < sizeof OPTS / sizeof OPTS[0]; k++)
            if (strlen(OPTS[k].name) == nlen && strncmp(OPTS[k].name, arg, nlen) == 0)
                op = &OPTS[k];
        if (op == NULL)
            return bad_flag("unknown flag '%s'", arg);
        if (op->type == OPT_BOOL) {
            if (eq != NULL)
                return bad_flag("%s takes no value", op->name);
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return bad_flag("%s needs a value (%s)", op->name, op->arg);
        }
        switch (op->type) {
        case OPT_BOOL:
            break;
        case OPT_STRING:
            if (*val == '\0')
                return bad_flag("%s: empty value", op->name);
            o->str[op->id] = val;
            break;
        case OPT_LIST:
            if (*val == '\0')
                return bad_flag("%s: empty value", op->name);
            if (op->id == O_TOKEN_HASH && !is_hex64(val))
                return bad_flag("%s: expected 64 hex digits (a SHA-256), got '%s'", op->name, val);
            if ((op->id == O_TOKEN ? o->ntokens : o->nhashes) >= TESTD_MAX_TOKENS)
                return bad_flag("%s: too many (at most %d)", op->name, TESTD_MAX_TOKENS);
            if (op->id == O_TOKEN)
                o->tokens[o->ntokens++] = val;
            else
                o->hashes[o->nhashes++] = val;
            break;
        case OPT_UINT:
            if (!parse_ull(val, &o->num[op->id]) || o->num[op->id] < op->min ||
                o->num[op->id] > op->max) {
                return bad_flag("%s: expected an integer in %llu..%llu, got '%s'", op->name,
                                op->min, op->max, val);
            }
            break;
        }
        o->set[op->id] = true;
    }
    return -1;
}

static int sha256_hex(const char *token, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned int i;

    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    logmsg(LOGMSG_INFO, "signal %d: shutting down", (int)sig);
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    options o;
    char hashbuf[TESTD_MAX_TOKENS][65];
    const char *hashes[2 * TESTD_MAX_TOKENS];
    size_t nh = 0;
    size_t i;
    engine_config ecfg;
    server_config scfg;
    struct event_base *base = NULL;
    struct event *sigterm = NULL;
    struct event *sigint = NULL;
    engine *eng = NULL;
    server *srv = NULL;
    char err[512];
    int rc;
    int status = 1;

    memset(&o, 0, sizeof o);
    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.set[O_HELP]) {
        usage(stdout);
        return 0;
    }
    engine_compat compat = ENGINE_COMPAT_0_3;
    if (o.str[O_COMPAT] != NULL) {
        if (strcmp(o.str[O_COMPAT], "0.3") == 0) {
            compat = ENGINE_COMPAT_0_3;
        } else if (strcmp(o.str[O_COMPAT], "0.1") == 0) {
            compat = ENGINE_COMPAT_0_1;
        } else {
            fprintf(stderr, "rstmdb-testd: --compat: \"%s\" is not 0.1 or 0.3\n", o.str[O_COMPAT]);
            return 2;
        }
    }
    if (o.set[O_VERSION]) {
        printf("rstmdb-testd %s (speaks rstmdb RCPX protocol 1, server_version %s)\n",
               TESTD_VERSION, compat == ENGINE_COMPAT_0_3 ? "0.3.0" : "0.1.1");
        return 0;
    }

    for (i = 0; i < o.ntokens; i++) {
        if (sha256_hex(o.tokens[i], hashbuf[i]) != 0) {
            fprintf(stderr, "rstmdb-testd: --token: SHA-256 failed\n");
            return 1;
        }
        hashes[nh++] = hashbuf[i];
    }
    for (i = 0; i < o.nhashes; i++)
        hashes[nh++] = o.hashes[i];

    memset(&ecfg, 0, sizeof ecfg);
    ecfg.auth_required = nh > 0;
    ecfg.token_hashes = hashes;
    ecfg.ntoken_hashes = nh;
    ecfg.max_machine_versions = (uint32_t)o.num[O_MAX_VERSIONS];
    ecfg.wal_segment_size = o.num[O_WAL_SEGMENT];
    ecfg.allow_flush_all = o.set[O_ALLOW_FLUSH_ALL];
    ecfg.compat = compat;

    memset(&scfg, 0, sizeof scfg);
    scfg.listen = o.str[O_LISTEN] != NULL ? o.str[O_LISTEN] : "127.0.0.1:7401";
    scfg.control = o.str[O_CONTROL];
    scfg.tls_cert = o.str[O_TLS_CERT];
    scfg.tls_key = o.str[O_TLS_KEY];
    scfg.tls_client_ca = o.str[O_TLS_CLIENT_CA];
    scfg.max_frame_bytes = (size_t)o.num[O_MAX_FRAME];
    scfg.max_connections = (unsigned)o.num[O_MAX_CONNS];
    scfg.idle_timeout_secs = o.set[O_IDLE] ? (unsigned)o.num[O_IDLE] : 300u;
    scfg.event_queue_max = (unsigned)o.num[O_EVQ_MAX];
    scfg.event_queue_bytes = (size_t)o.num[O_EVQ_BYTES];
    scfg.socket_sndbuf = (unsigned)o.num[O_SNDBUF];
    scfg.faults.delay_ms = (uint32_t)o.num[O_F_DELAY];
    scfg.faults.close_after = (uint32_t)o.num[O_F_CLOSE_AFTER];
    scfg.faults.garble_every = (uint32_t)o.num[O_F_GARBLE_EVERY];
    scfg.faults.hang = o.set[O_F_HANG];
    scfg.faults.refuse = o.set[O_F_REFUSE];

    {
        /* 1000 connections need more than the usual 1024 descriptors once
         * listeners, control clients and stdio count: raise the soft limit. */
        struct rlimit rl;
        rlim_t want = (rlim_t)(scfg.max_connections ? scfg.max_connections : 1000u) + 64u;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
            rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* A client vanishing mid-write must be an EPIPE, not the end of us. */
    signal(SIGPIPE, SIG_IGN);

    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "rstmdb-testd: cannot create the event loop\n");
        return 1;
    }
    if (engine_new(&eng, &ecfg) != 0) {
        fprintf(stderr, "rstmdb-testd: out of memory creating the engine\n");
        goto out;
    }
    rc = server_new(&srv, base, eng, &scfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "rstmdb-testd: %s\n", err);
        status = rc == SERVER_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        fprintf(stderr, "rstmdb-testd: cannot install signal handlers\n");
        goto out;
    }
    if (nh > 0)
        logmsg(LOGMSG_INFO, "auth required (%zu token hash%s)", nh, nh == 1 ? "" : "es");
    {
        char desc[200];
        const fault *f = server_faults(srv);
        if (f->delay_ms || f->close_after || f->garble_every || f->hang || f->refuse) {
            fault_describe(f, desc, sizeof desc);
            logmsg(LOGMSG_WARN, "faults armed: %s", desc);
        }
    }
    printf("listening on %s\n", server_address(srv));
    if (server_control_address(srv) != NULL)
        printf("control on %s\n", server_control_address(srv));
    fflush(stdout);

    if (event_base_dispatch(base) < 0) {
        fprintf(stderr, "rstmdb-testd: event loop failed\n");
        goto out;
    }
    status = 0;
out:
    server_free(srv);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    engine_free(eng);
    if (base != NULL)
        event_base_free(base);
    if (status == 0)
        logmsg(LOGMSG_INFO, "stopped");
    return status;
}

/*
 * capi.c - the libvirt C API's own cost of listing VMs: the floor KvmPS's Get-KvmVm is compared with.
 *
 *   capi URI [N] [REPS]
 *
 * For a test:// URI the program first defines N domains (kvmpsbench-<i>) in its own connection: the test
 * driver lives inside the process and forgets everything when the last connection closes. For any other
 * URI it only lists the domains that already exist (N is ignored).
 *
 * Each figure is the best of REPS repetitions (default 5), in microseconds per listed domain:
 *   list_name_uuid_info  virConnectListAllDomains + per domain virDomainGetName, virDomainGetUUIDString,
 *                        virDomainGetInfo, virDomainFree (+ free of the array)
 *   all_domain_stats     virConnectGetAllDomainStats(STATE|CPU_TOTAL|BALLOON|VCPU) + virDomainStatsRecordListFree
 *   kvmps_equivalent     what VmService.List asks libvirt for: all_domain_stats + name/UUID of every record
 *                        + three filtered virConnectListAllDomains (autostart, transient, managed save)
 *
 * Output: one line per figure, e.g.  capi list_name_uuid_info us_per_vm=2.95 n=10001 best_ms=29.50
 * Build:  gcc -O2 -Wall -Wextra -o capi capi.c -lvirt
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define STATS_TYPES (VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU)

typedef int (*bench_fn)(virConnectPtr conn);

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void fail(const char *what)
{
    const char *msg = virGetLastErrorMessage();
    fprintf(stderr, "capi: %s failed: %s\n", what, msg ? msg : "unknown error");
}

static void quiet_errors(void *opaque, virErrorPtr err)
{
    (void)opaque;
    (void)err;   /* reported by fail() instead of libvirt's default stderr printer */
}

/* (a) list + name + UUID + info per domain. Returns the number of domains, -1 on error. */
static int bench_list_name_uuid_info(virConnectPtr conn)
{
    virDomainPtr *doms = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    virDomainInfo info;
    int rc = 0;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        fail("virConnectListAllDomains");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            if (virDomainGetName(doms[i]) == NULL) {
                fail("virDomainGetName");
                rc = -1;
            } else if (virDomainGetUUIDString(doms[i], uuid) < 0) {
                fail("virDomainGetUUIDString");
                rc = -1;
            } else if (virDomainGetInfo(doms[i], &info) < 0) {
                fail("virDomainGetInfo");
                rc = -1;
            }
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    return rc < 0 ? -1 : n;
}

/* (b) bulk statistics. Returns the number of records, -1 on error. */
static int bench_all_domain_stats(virConnectPtr conn)
{
    virDomainStatsRecordPtr *recs = NULL;
    int n = virConnectGetAllDomainStats(conn, STATS_TYPES, &recs, 0);
    if (n < 0) {
        fail("virConnectGetAllDomainStats");
        return -1;
    }
    virDomainStatsRecordListFree(recs);
    return n;
}

static int count_filtered(virConnectPtr conn, unsigned int flags)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, flags);
    if (n < 0) {
        fail("virConnectListAllDomains(filtered)");
        return -1;
    }
    for (int i = 0; i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    return n;
}

/* (c) the libvirt calls VmService.List makes (minus the per-VM virDomainGetInfo it adds for the test driver). */
static int bench_kvmps_equivalent(virConnectPtr conn)
{
    virDomainStatsRecordPtr *recs = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    int rc = 0;
    int n = virConnectGetAllDomainStats(conn, STATS_TYPES, &recs, 0);
    if (n < 0) {
        fail("virConnectGetAllDomainStats");
        return -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        if (virDomainGetName(recs[i]->dom) == NULL || virDomainGetUUIDString(recs[i]->dom, uuid) < 0) {
            fail("virDomainGetName/virDomainGetUUIDString");
            rc = -1;
        }
    }
    virDomainStatsRecordListFree(recs);
    if (rc == 0 && (count_filtered(conn, VIR_CONNECT_LIST_DOMAINS_AUTOSTART) < 0
                    || count_filtered(conn, VIR_CONNECT_LIST_DOMAINS_TRANSIENT) < 0
                    || count_filtered(conn, VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE) < 0))
        rc = -1;
    return rc < 0 ? -1 : n;
}

static int define_test_domains(virConnectPtr conn, long count)
{
    char xml[512];
    for (long i = 0; i < count; i++) {
        int len = snprintf(xml, sizeof(xml),
                           "<domain type='test'><name>kvmpsbench-%ld</name>"
                           "<memory unit='KiB'>16384</memory><currentMemory unit='KiB'>16384</currentMemory>"
                           "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>", i);
        if (len < 0 || (size_t)len >= sizeof(xml)) {
            fprintf(stderr, "capi: domain XML too long\n");
            return -1;
        }
        virDomainPtr d = virDomainDefineXML(conn, xml);
        if (d == NULL) {
            fail("virDomainDefineXML");
            return -1;
        }
        virDomainFree(d);
    }
    return 0;
}

/* Runs fn reps times (after one warm-up) and prints the best time. */
static int report(virConnectPtr conn, const char *label, bench_fn fn, int reps)
{
    double best = -1;
    int n = fn(conn);   /* warm-up */
    if (n < 0)
        return -1;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        n = fn(conn);
        double t = now_us() - t0;
        if (n < 0)
            return -1;
        if (best < 0 || t < best)
            best = t;
    }
    if (n > 0)
        printf("capi %s us_per_vm=%.3f n=%d best_ms=%.3f\n", label, best / n, n, best / 1e3);
    else
        printf("capi %s us_per_vm=NaN n=0 best_ms=%.3f\n", label, best / 1e3);
    fflush(stdout);
    return 0;
}

static long parse_long(const char *s, const char *what, long min)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min) {
        fprintf(stderr, "capi: invalid %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s URI [N] [REPS]\n", argv[0]);
        return 2;
    }
    const char *uri = argv[1];
    long count = argc > 2 ? parse_long(argv[2], "N", 0) : 0;
    int reps = argc > 3 ? (int)parse_long(argv[3], "REPS", 1) : 5;
    int is_test = strncmp(uri, "test:", 5) == 0;
    int rc = 1;

    virSetErrorFunc(NULL, quiet_errors);
    virConnectPtr conn = virConnectOpen(uri);
    if (conn == NULL) {
        fail("virConnectOpen");
        return 1;
    }

    if (is_test && count > 0) {
        double t0 = now_us();
        if (define_test_domains(conn, count) < 0)
            goto out;
        printf("capi define_test_domains us_per_vm=%.3f n=%ld\n", (now_us() - t0) / count, count);
    }

    if (report(conn, "list_name_uuid_info", bench_list_name_uuid_info, reps) < 0
        || report(conn, "all_domain_stats", bench_all_domain_stats, reps) < 0
        || report(conn, "kvmps_equivalent", bench_kvmps_equivalent, reps) < 0)
        goto out;
    rc = 0;

out:
    /* Domains defined on test:// vanish with the connection: nothing to undefine. */
    if (virConnectClose(conn) < 0) {
        fail("virConnectClose");
        rc = 1;
    }
    return rc;
}

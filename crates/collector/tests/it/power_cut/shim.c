/*
 * A disk with a volatile write cache, for one directory, as an LD_PRELOAD
 * library: what a process writes under POWERCUT_VOLATILE is only "on disk"
 * once it is synced, and a power cut leaves only that.
 *
 * The files under the directory are the cache: the process reads and writes
 * them as usual (pread, pwrite, mmap of SQLite's -shm all work unchanged).
 * The disk is POWERCUT_DURABLE, which this library keeps:
 *
 *   content/<key>  the content of one file (inode) as of its last fsync or
 *                  fdatasync: the whole file is copied there when it is
 *                  synced, so a sync persists everything written to it
 *                  before, and nothing written after;
 *   snapshot       the directory's entries (name, key) as of its last
 *                  fsync: a name created, renamed or removed after that is
 *                  not on disk (POSIX asks for a directory fsync; SQLite
 *                  does one when it creates a journal or WAL);
 *   live           (inode, key) lines, the last for an inode winning: which
 *                  file in the folder holds each key's unsynced writes, so
 *                  the test can also cut the power as a disk that kept some
 *                  of them.
 *
 * A power cut is then: SIGKILL the process, and rebuild the directory from
 * the snapshot, each name with its key's content (a name whose file was
 * never synced comes back empty). The test does that; when the process
 * starts again, this library takes what is in the directory as on disk.
 *
 * Each inode gets a new key when the process creates it (open with O_CREAT
 * of a name that did not exist), so a file created and synced under a name
 * that the snapshot still gives to an older, unlinked file does not
 * overwrite that file's content on disk.
 *
 * Limits of the model: a sync copies the file whole, so a sync that the
 * power cut interrupts leaves the old content, never a torn mix (the copy
 * is renamed into place); unsynced writes are kept or lost in whole 4 KiB
 * blocks, by the test (a disk's sectors may be smaller), and a name only
 * reaches the disk with a sync of the folder (a journaling file system
 * often writes names earlier, in order: this is the stricter case);
 * sync_file_range, syncfs, sync and msync are not intercepted (SQLite and
 * the collector use fsync and fdatasync only); files opened before the
 * library's constructor ran, or created by a path not intercepted here
 * (openat2, O_TMPFILE), are taken as they are when they are first synced;
 * only files directly in the folder are tracked (no subdirectories); the
 * host's own disk is not asked to sync the folder's files, so a sync takes
 * as long as the copy, not as a disk would; and a process that starts
 * again without a cut before it takes its unsynced writes as on disk.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int enabled;
static char volatile_dir[PATH_MAX];
static size_t volatile_len;
static dev_t volatile_dev;
static ino_t volatile_ino;
static char durable_dir[1024];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Keys are unique across the runs of one test: this process's id and start
 * time, and a counter. */
static char key_prefix[64];
static uint64_t key_counter;

struct node {
    ino_t ino;
    char key[96];
};
static struct node *nodes;
static size_t node_count, node_cap;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void die(const char *what) {
    fprintf(stderr, "powercut shim: %s: %s\n", what, strerror(errno));
    abort();
}

static void resolve(void) {
    if (real_fsync) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
}

static struct node *find(ino_t ino) {
    for (size_t i = 0; i < node_count; i++)
        if (nodes[i].ino == ino) return &nodes[i];
    return NULL;
}

/* A new key for `ino`, replacing any it had. */
static struct node *assign(ino_t ino) {
    struct node *n = find(ino);
    if (!n) {
        if (node_count == node_cap) {
            node_cap = node_cap ? node_cap * 2 : 64;
            nodes = realloc(nodes, node_cap * sizeof *nodes);
            if (!nodes) die("realloc");
        }
        n = &nodes[node_count++];
        n->ino = ino;
    }
    snprintf(n->key, sizeof n->key, "%s-%llu", key_prefix, (unsigned long long)key_counter++);
    /* For the test, which may keep some of the writes a sync did not cover
     * (see `live`): which file in the folder each key is now. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/live", durable_dir);
    FILE *live = fopen(path, "a");
    if (!live) die(path);
    fprintf(live, "%llu\t%s\n", (unsigned long long)ino, n->key);
    fclose(live);
    return n;
}

static void content_path(char *out, const char *key) {
    snprintf(out, PATH_MAX, "%s/content/%s", durable_dir, key);
}

/* Copies what `fd`'s file holds now to the key's content, atomically. */
static void persist(int fd, const char *key) {
    char path[PATH_MAX], tmp[PATH_MAX + 8], self[64];
    content_path(path, key);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* `fd` may be open for writing only: read through a descriptor of our
     * own on the same file (which works for an unlinked file too). */
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int in = real_open(self, O_RDONLY | O_CLOEXEC);
    if (in < 0) die(self);
    int out = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) die(tmp);
    static char buf[1 << 16];
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(in, buf, sizeof buf, at);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("reading a synced file");
        }
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0) {
                if (errno == EINTR) continue;
                die("writing durable content");
            }
            done += w;
        }
        at += n;
    }
    close(in);
    close(out);
    if (rename(tmp, path) != 0) die("renaming durable content");
}

/* An empty content: a created file's name may reach the disk before any of
 * its data does. */
static void persist_empty(const char *key) {
    char path[PATH_MAX];
    content_path(path, key);
    int out = real_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) die(path);
    close(out);
}

/* The directory's entries now become its entries on disk. */
static void persist_names(void) {
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/snapshot", durable_dir);
    snprintf(tmp, sizeof tmp, "%s/snapshot.tmp", durable_dir);
    FILE *out = fopen(tmp, "w");
    if (!out) die(tmp);
    DIR *dir = opendir(volatile_dir);
    if (!dir) die(volatile_dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        struct node *n = find(st.st_ino);
        if (!n) {
            /* Created by a path this library does not see: nothing of it
             * was synced through it either. */
            fprintf(stderr, "powercut shim: %s was created unseen; it is on disk empty\n", e->d_name);
            n = assign(st.st_ino);
            persist_empty(n->key);
        }
        fprintf(out, "%s\t%s\n", e->d_name, n->key);
    }
    closedir(dir);
    if (fclose(out) != 0) die("writing the snapshot");
    if (rename(tmp, path) != 0) die("renaming the snapshot");
}

/* Whether `fd` is a regular file directly in the directory. */
static int in_volatile_dir(int fd, struct stat *st) {
    if (fstat(fd, st) != 0 || st->st_dev != volatile_dev || !S_ISREG(st->st_mode)) return 0;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len < 0) return 0;
    target[len] = 0;
    return (size_t)len > volatile_len + 1 && !strncmp(target, volatile_dir, volatile_len) &&
           target[volatile_len] == '/' && !strchr(target + volatile_len + 1, '/');
}

static void after_sync(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != volatile_dev) return;
    pthread_mutex_lock(&lock);
    if (S_ISDIR(st.st_mode)) {
        if (st.st_ino == volatile_ino) persist_names();
    } else if (S_ISREG(st.st_mode)) {
        struct node *n = find(st.st_ino);
        if (!n && in_volatile_dir(fd, &st)) n = assign(st.st_ino);
        if (n) persist(fd, n->key);
    }
    pthread_mutex_unlock(&lock);
}

static void after_create(int fd) {
    struct stat st;
    if (fd < 0 || !in_volatile_dir(fd, &st)) return;
    pthread_mutex_lock(&lock);
    persist_empty(assign(st.st_ino)->key);
    pthread_mutex_unlock(&lock);
}

static int existed(int dirfd, const char *path, int flags) {
    struct stat st;
    return !(flags & O_CREAT) || fstatat(dirfd, path, &st, 0) == 0;
}

__attribute__((constructor)) static void start(void) {
    resolve();
    const char *v = getenv("POWERCUT_VOLATILE"), *d = getenv("POWERCUT_DURABLE");
    if (!v || !d) return;
    if (strlen(d) >= sizeof durable_dir) {
        errno = ENAMETOOLONG;
        die(d);
    }
    if (!realpath(v, volatile_dir)) die(v);
    volatile_len = strlen(volatile_dir);
    snprintf(durable_dir, sizeof durable_dir, "%s", d);
    struct stat st;
    if (stat(volatile_dir, &st) != 0) die(volatile_dir);
    volatile_dev = st.st_dev;
    volatile_ino = st.st_ino;
    char content[PATH_MAX];
    snprintf(content, sizeof content, "%s/content", durable_dir);
    if (mkdir(content, 0755) != 0 && errno != EEXIST) die(content);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(key_prefix, sizeof key_prefix, "%d-%lld%09ld", (int)getpid(), (long long)now.tv_sec, now.tv_nsec);
    enabled = 1;
    /* What is in the directory now is what the disk holds. */
    DIR *dir = opendir(volatile_dir);
    if (!dir) die(volatile_dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        int fd = openat(dirfd(dir), e->d_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die(e->d_name);
        persist(fd, assign(st.st_ino)->key);
        close(fd);
    }
    closedir(dir);
    persist_names();
}

/* --------------------------------------------------------------- wrappers */

static mode_t mode_of(int flags, va_list ap) {
    return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_WRAPPER(name, real)                                         \
    int name(const char *path, int flags, ...) {                         \
        resolve();                                                       \
        va_list ap;                                                      \
        va_start(ap, flags);                                             \
        mode_t mode = mode_of(flags, ap);                                \
        va_end(ap);                                                      \
        int was = !enabled || existed(AT_FDCWD, path, flags);            \
        int fd = real(path, flags, mode);                                \
        if (!was) after_create(fd);                                      \
        return fd;                                                       \
    }
OPEN_WRAPPER(open, real_open)
OPEN_WRAPPER(open64, real_open64)

#define OPENAT_WRAPPER(name, real)                                       \
    int name(int dirfd, const char *path, int flags, ...) {              \
        resolve();                                                       \
        va_list ap;                                                      \
        va_start(ap, flags);                                             \
        mode_t mode = mode_of(flags, ap);                                \
        va_end(ap);                                                      \
        int was = !enabled || existed(dirfd, path, flags);               \
        int fd = real(dirfd, path, flags, mode);                         \
        if (!was) after_create(fd);                                      \
        return fd;                                                       \
    }
OPENAT_WRAPPER(openat, real_openat)
OPENAT_WRAPPER(openat64, real_openat64)

int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

/* _FORTIFY_SOURCE's entry points for two-argument calls (no O_CREAT). */
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

/* Inside the folder the copy is the sync; the host's own disk is not asked
 * to sync files the test throws away (that only slowed the load down). */
static int is_tracked(int fd) {
    struct stat st;
    return enabled && fstat(fd, &st) == 0 && st.st_dev == volatile_dev &&
           ((S_ISDIR(st.st_mode) && st.st_ino == volatile_ino) || in_volatile_dir(fd, &st));
}

int fsync(int fd) {
    resolve();
    if (!is_tracked(fd)) return real_fsync(fd);
    after_sync(fd);
    return 0;
}

int fdatasync(int fd) {
    resolve();
    if (!is_tracked(fd)) return real_fdatasync(fd);
    after_sync(fd);
    return 0;
}

/*
 * vmwctl: a small operator tool over vmware/ (like govc, for the few things
 * snapworker does).  The password comes from --password-file or the
 * VMWCTL_PASSWORD environment variable, never from argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/hashpipe.h"
#include "common/secret.h"
#include "common/version.h"
#include "common/err.h"
#include "common/io.h"
#include "common/num.h"
#include "vmware/vmware.h"

#define PASSWORD_MAX 4096

static atomic_int cancelled;

static void
on_signal(int sig)
{
	(void)sig;
	cancelled = 1;
}

static const char usage_text[] =
"usage: vmwctl --help | --version\n"
"       vmwctl --url URL --user USER [TLS] [--password-file FILE] COMMAND [ARGS]\n"
"\n"
"The password is read from --password-file or $VMWCTL_PASSWORD, never from argv.\n"
"TLS: --cacert FILE | --thumbprint SHA256 | --insecure (test rigs only)\n"
"Other: --timeout SECONDS (default 21600), --progress (report on stderr)\n"
"\n"
"commands:\n"
"  about                                  product, version, API version\n"
"  vm-info --vm NAME|UUID|PATH            disks with datastore paths, capacities, chains\n"
"  export --vm VM --out DIR --name N      ExportVm of a powered-off VM: N.ovf + N-diskK.vmdk\n"
"  import --ovf FILE --name N --like VM   import an OVF (disks next to it) beside VM;\n"
"                                         prints the new VM and its disk paths\n"
"  power-off --vm VM\n"
"  snapshot-create --vm VM --name S [--quiesce]     prints the snapshot id\n"
"  snapshot-remove --snapshot ID                     removes it, consolidating disks\n"
"  snapshot-disk --vm VM --snapshot ID --disk DSPATH the chain the snapshot froze\n"
"  worker-create --vm VM --snapshot ID --disk DSPATH --name N [--tag T]\n"
"                                         worker VM on the snapshot's chain; prints its id\n"
"  worker-destroy --worker ID             detach its disk, then destroy it\n"
"  worker-list                            VMs tagged snapworker.command\n"
"  sweep --older-than DURATION [--dry-run]   destroy tagged worker VMs older than that\n"
"  backup --vm VM --disk DSPATH --out DIR --name N\n"
"                                         snapshot, worker VM, export, cleanup: the\n"
"                                         CreateSnapshot data path\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

struct opts {
	const char *url, *user, *password_file, *cacert, *thumbprint;
	int insecure, progress, quiesce, dry_run;
	uint64_t timeout_s;
	const char *vm, *out, *name, *ovf, *like, *snapshot, *disk, *worker, *tag, *older_than;
};

static int
die(struct sw_err *e, const char *what)
{
	fprintf(stderr, "vmwctl: %s: %s\n", what, e->msg[0] != '\0' ? e->msg :
	    sw_strerror(e->code));
	return 1;
}

static int
read_password(const char *file, char *buf, size_t bufsz, struct sw_err *e)
{
	const char *env = getenv("VMWCTL_PASSWORD");
	char *pw = NULL;
	int r;

	if (file == NULL) {
		if (env == NULL || env[0] == '\0')
			return sw_errf(e, -EINVAL, "no password: use --password-file or VMWCTL_PASSWORD");
		if (snprintf(buf, bufsz, "%s", env) >= (int)bufsz)
			return sw_errf(e, -EINVAL, "password too long");
		return 0;
	}
	/* The one rule for secret files of every snapworker program (common/secret.h). */
	if ((r = sw_secret_read(file, &pw, e)) < 0)
		return r;
	if (snprintf(buf, bufsz, "%s", pw) >= (int)bufsz) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
		return sw_errf(e, -EINVAL, "password file %s is too long", file);
	}
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return 0;
}

static void
moref_of(struct vmw_moref *m, const char *type, const char *value)
{
	memset(m, 0, sizeof(*m));
	(void)snprintf(m->type, sizeof(m->type), "%s", type);
	(void)snprintf(m->value, sizeof(m->value), "%s", value);
}

/* A file name of ours inside the output directory: no separators, no dot names. */
static int
safe_name(const char *s)
{
	return s != NULL && s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL &&
	    strlen(s) < 200;
}

/* ------------------------------------------------------------------ */
/* File sinks for export                                               */

struct file_sink {
	int dirfd;
	int fd;
	char name[256];
	struct sw_hash *h;
	struct sw_hashpipe *hp;  /* the export's hashing thread; NULL: inline */
	char sha256[129];
	uint64_t bytes;
	struct sw_writeback wb;
};

struct export_ctx {
	int dirfd;
	struct sw_hashpipe *hp;
	struct file_sink disks[VMW_MAX_DISKS];
	int progress;
	uint64_t last_report;
};

static int
sink_write(void *ud, const void *p, size_t n, struct sw_err *e)
{
	struct file_sink *s = ud;
	int r;

	if ((r = sw_write_all(s->fd, p, n)) < 0)
		return sw_errno(e, -r, "write of %s", s->name);
	/* The digest on the helper thread, beside the next block's download. */
	if ((s->hp != NULL ? sw_hashpipe_update(s->hp, s->h, p, n) : sw_hash_update(s->h, p, n)) < 0)
		return sw_errf(e, SW_EINTERNAL, "sha256 of %s", s->name);
	s->bytes += n;
	/* The close's fsync then finds most of the file on its way to the disk. */
	if ((r = sw_writeback(s->fd, &s->wb, s->bytes)) < 0)
		return sw_errno(e, -r, "write-back of %s", s->name);
	return 0;
}

static int
sink_open(void *ud, const struct vmw_nfc_disk *d, struct sw_sink *ret_sink, struct sw_err *e)
{
	struct export_ctx *x = ud;
	struct file_sink *s;

	if (d->index < 0 || d->index >= VMW_MAX_DISKS)
		return sw_errf(e, -EINVAL, "disk index %d", d->index);
	s = &x->disks[d->index];
	memset(s, 0, sizeof(*s));
	if (snprintf(s->name, sizeof(s->name), "%s", d->file) >= (int)sizeof(s->name) ||
	    !safe_name(s->name))
		return sw_errf(e, -EINVAL, "bad disk file name '%s'", d->file);
	s->fd = openat(x->dirfd, s->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (s->fd < 0)
		return sw_errno(e, errno, "cannot create %s", s->name);
	if ((s->h = sw_hash_new("sha256")) == NULL) {
		(void)close(s->fd);
		s->fd = -1;
		return sw_errf(e, -ENOMEM, "out of memory");
	}
	if (x->hp == NULL)
		x->hp = sw_hashpipe_new(2u * 1024 * 1024);
	s->hp = x->hp;
	ret_sink->write = sink_write;
	ret_sink->ud = s;
	return 0;
}

static int
sink_close(void *ud, const struct vmw_nfc_disk *d, int status, uint64_t bytes, struct sw_err *e)
{
	struct export_ctx *x = ud;
	struct file_sink *s = &x->disks[d->index];
	int r = 0;

	(void)bytes;
	if (s->fd < 0)
		return 0;
	/* Every byte posted is hashed before the digest is read or freed. */
	if (s->hp != NULL && sw_hashpipe_sync(s->hp) < 0 && status == 0)
		r = sw_errf(e, SW_EINTERNAL, "sha256 of %s", s->name);
	if (status == 0 && r == 0 && fsync(s->fd) < 0)
		r = sw_errno(e, errno, "fsync of %s", s->name);
	if (close(s->fd) < 0 && r == 0 && status == 0)
		r = sw_errno(e, errno, "close of %s", s->name);
	s->fd = -1;
	if (status == 0 && r == 0)
		(void)sw_hash_final(s->h, s->sha256, sizeof(s->sha256));
	sw_hash_free(s->h);
	s->h = NULL;
	/* A partial disk is debris: remove it. */
	if (status < 0 || r < 0)
		(void)unlinkat(x->dirfd, s->name, 0);
	return r;
}

static void
on_progress(void *ud, uint64_t bytes, int percent)
{
	struct export_ctx *x = ud;
	uint64_t now = sw_mono_ms();

	if (!x->progress || (percent != 100 && now - x->last_report < 2000))
		return;
	x->last_report = now;
	fprintf(stderr, "progress: %d%% %" PRIu64 " bytes\n", percent, bytes);
}

static int
write_file(int dirfd, const char *name, const char *data, size_t len, struct sw_err *e)
{
	int fd, r;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return sw_errno(e, errno, "cannot create %s", name);
	if ((r = sw_write_all(fd, data, len)) < 0 || fsync(fd) < 0) {
		r = sw_errno(e, r < 0 ? -r : errno, "write of %s", name);
		(void)close(fd);
		(void)unlinkat(dirfd, name, 0);
		return r;
	}
	(void)close(fd);
	return 0;
}

static int
do_export(struct vmw_conn *c, const struct vmw_moref *vm, const struct opts *o,
    uint64_t deadline, struct sw_err *e)
{
	struct export_ctx x;
	struct vmw_export_opts eo;
	struct vmw_export_result *res = NULL;
	char ovfname[256];
	size_t i;
	int r;

	if (o->out == NULL || !safe_name(o->name))
		return sw_errf(e, -EINVAL, "export needs --out DIR and a plain --name");
	memset(&x, 0, sizeof(x));
	x.progress = o->progress;
	/* An output directory that does not exist yet is made (its parent must exist). */
	if (mkdir(o->out, 0755) < 0 && errno != EEXIST)
		return sw_errno(e, errno, "cannot make output directory %s", o->out);
	x.dirfd = open(o->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.dirfd < 0)
		return sw_errno(e, errno, "cannot open output directory %s", o->out);
	for (i = 0; i < VMW_MAX_DISKS; i++)
		x.disks[i].fd = -1;
	memset(&eo, 0, sizeof(eo));
	eo.name = o->name;
	eo.sink_open = sink_open;
	eo.sink_close = sink_close;
	eo.progress = on_progress;
	eo.ud = &x;
	r = vmw_export_vm(c, vm, &eo, &res, deadline, &cancelled, e);
	if (r < 0)
		goto out;
	(void)snprintf(ovfname, sizeof(ovfname), "%s.ovf", o->name);
	if ((r = write_file(x.dirfd, ovfname, res->ovf, res->ovf_len, e)) < 0)
		goto out;
	printf("ovf: %s %zu\n", ovfname, res->ovf_len);
	for (i = 0; i < res->nfiles; i++)
		printf("disk%zu: %s %" PRIu64 " sha256=%s\n", i, res->files[i].file,
		    res->files[i].size, x.disks[i].sha256);
out:
	vmw_export_result_free(res);
	sw_hashpipe_free(x.hp);
	(void)close(x.dirfd);
	return r;
}

/* ------------------------------------------------------------------ */
/* Import sources                                                      */

struct import_ctx {
	int dirfd;
	int fd;
};

static ssize_t
src_read(void *ud, void *p, size_t n, struct sw_err *e)
{
	struct import_ctx *x = ud;
	ssize_t r = sw_read_full(x->fd, p, n);

	if (r < 0)
		return sw_errno(e, (int)-r, "read");
	return r;
}

static int
src_open(void *ud, const char *file, struct sw_source *ret_src, uint64_t *ret_size,
    struct sw_err *e)
{
	struct import_ctx *x = ud;
	struct stat st;

	if (!safe_name(file))
		return sw_errf(e, -EINVAL, "OVF names an unsafe file '%s'", file);
	x->fd = openat(x->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (x->fd < 0)
		return sw_errno(e, errno, "cannot open %s", file);
	if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		(void)close(x->fd);
		x->fd = -1;
		return sw_errf(e, -EINVAL, "%s is not a regular file", file);
	}
	ret_src->read = src_read;
	ret_src->ud = x;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

static void
src_close(void *ud, const char *file, struct sw_source *src)
{
	struct import_ctx *x = ud;

	(void)file; (void)src;
	if (x->fd >= 0)
		(void)close(x->fd);
	x->fd = -1;
}

static int
do_import(struct vmw_conn *c, const struct opts *o, uint64_t deadline, struct sw_err *e)
{
	struct vmw_import_opts io;
	struct vmw_import_result *res = NULL;
	struct vmw_vm_info *like = NULL;
	struct vmw_moref vm;
	struct import_ctx x = { -1, -1 };
	char *ovf = NULL, dir[4096];
	const char *slash;
	struct stat st;
	ssize_t n;
	size_t i;
	int fd = -1, r;

	if (o->ovf == NULL || o->name == NULL || o->like == NULL)
		return sw_errf(e, -EINVAL, "import needs --ovf FILE --name N --like VM");
	if ((fd = open(o->ovf, O_RDONLY | O_CLOEXEC)) < 0)
		return sw_errno(e, errno, "cannot open %s", o->ovf);
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (16 << 20)) {
		r = sw_errf(e, -EINVAL, "%s: not an OVF of sane size", o->ovf);
		goto out;
	}
	if ((ovf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = sw_errf(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((n = sw_read_full(fd, ovf, (size_t)st.st_size)) != st.st_size) {
		r = sw_errf(e, -EIO, "short read of %s", o->ovf);
		goto out;
	}
	ovf[n] = '\0';
	slash = strrchr(o->ovf, '/');
	(void)snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - o->ovf) : 1,
	    slash != NULL ? o->ovf : ".");
	if (slash == o->ovf)
		memcpy(dir, "/", 2);
	if ((x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = sw_errno(e, errno, "cannot open %s", dir);
		goto out;
	}
	if ((r = vmw_vm_find(c, VMW_VM_BY_ANY, o->like, &vm, deadline, &cancelled, e)) < 0 ||
	    (r = vmw_vm_info_get(c, &vm, &like, deadline, &cancelled, e)) < 0)
		goto out;
	memset(&io, 0, sizeof(io));
	io.ovf = ovf;
	io.vm_name = o->name;
	io.pool = &like->resource_pool;
	io.folder = &like->vm_folder;
	io.datastore = &like->datastore;
	io.host = &like->host;
	io.source_open = src_open;
	io.source_close = src_close;
	io.ud = &x;
	r = vmw_import_vm(c, &io, &res, deadline, &cancelled, e);
	if (r < 0)
		goto out;
	printf("vm: %s\n", res->vm.value);
	for (i = 0; i < res->ndisks; i++)
		printf("disk%zu: %s\n", i, res->disk_paths[i]);
out:
	vmw_import_result_free(res);
	vmw_vm_info_free(like);
	free(ovf);
	if (fd >= 0)
		(void)close(fd);
	if (x.dirfd >= 0)
		(void)close(x.dirfd);
	return r;
}

/* ------------------------------------------------------------------ */
/* Other commands                                                      */

static void
print_disk(const struct vmw_disk *d, const char *indent)
{
	size_t k;

	printf("%sdisk key=%d file=%s capacity=%" PRIu64 " mode=%s datastore=%s\n", indent, d->key,
	    d->file, d->capacity_bytes, d->disk_mode != NULL ? d->disk_mode : "-",
	    d->datastore.value[0] != '\0' ? d->datastore.value : "-");
	for (k = 0; k < d->nchain; k++)
		printf("%s  chain[%zu]: %s\n", indent, k, d->chain[k]);
}

static int
do_vm_info(struct vmw_conn *c, const struct vmw_moref *vm, uint64_t deadline, struct sw_err *e)
{
	struct vmw_vm_info *info = NULL;
	size_t i;
	int r;

	if ((r = vmw_vm_info_get(c, vm, &info, deadline, &cancelled, e)) < 0)
		return r;
#define S(x) ((x) != NULL ? (x) : "-")
	printf("vm: %s\nname: %s\ninstance-uuid: %s\nbios-uuid: %s\npower: %s\nvmx: %s\n",
	    info->vm.value, S(info->name), S(info->instance_uuid), S(info->bios_uuid),
	    S(info->power_state), S(info->vmx_path));
	printf("host: %s\npool: %s\ndatacenter: %s\nfolder: %s\ndatastore: %s\n",
	    info->host.value, info->resource_pool.value, info->datacenter.value,
	    info->vm_folder.value, info->datastore.value);
	if (info->current_snapshot.value[0] != '\0')
		printf("current-snapshot: %s\n", info->current_snapshot.value);
	if (info->tag != NULL)
		printf("tag: %s\ncreated: %" PRId64 "\n", info->tag, info->created);
#undef S
	for (i = 0; i < info->ndisks; i++)
		print_disk(&info->disks[i], "");
	vmw_vm_info_free(info);
	return 0;
}

static int
make_worker(struct vmw_conn *c, const struct vmw_moref *vm, const struct vmw_moref *snap,
    const char *disk_path, const char *name, const char *tag, struct vmw_moref *ret_worker,
    uint64_t deadline, struct sw_err *e)
{
	struct vmw_vm_info *info = NULL;
	struct vmw_disk *d = NULL;
	struct vmw_worker_spec ws;
	int r;

	if ((r = vmw_vm_info_get(c, vm, &info, deadline, &cancelled, e)) < 0)
		return r;
	if ((r = vmw_snapshot_disk(c, vm, snap, disk_path, &d, deadline, &cancelled, e)) < 0)
		goto out;
	memset(&ws, 0, sizeof(ws));
	ws.name = name;
	ws.tag = tag;
	ws.folder = &info->vm_folder;
	ws.pool = &info->resource_pool;
	ws.host = &info->host;
	ws.disk = d;
	r = vmw_worker_vm_create(c, &ws, ret_worker, deadline, &cancelled, e);
out:
	vmw_disk_free(d);
	vmw_vm_info_free(info);
	return r;
}

/*
 * The CreateSnapshot data path: snapshot, worker VM on the snapshot's chain,
 * export, then cleanup in every path (worker VM first, then the snapshot).
 */
static int
do_backup(struct vmw_conn *c, const struct vmw_moref *vm, const struct opts *o,
    uint64_t deadline, struct sw_err *e)
{
	struct vmw_moref snap, worker;
	struct sw_err ce;
	char sname[128];
	int r, have_snap = 0, have_worker = 0;

	if (o->disk == NULL || o->out == NULL || !safe_name(o->name))
		return sw_errf(e, -EINVAL, "backup needs --disk, --out and --name");
	(void)snprintf(sname, sizeof(sname), "snapworker-%s", o->name);
	if ((r = vmw_snapshot_create(c, vm, sname, "snapworker backup", o->quiesce, &snap,
	    deadline, &cancelled, e)) < 0)
		return r;
	have_snap = 1;
	printf("snapshot: %s\n", snap.value);
	r = make_worker(c, vm, &snap, o->disk, o->name, o->tag != NULL ? o->tag : o->name,
	    &worker, deadline, e);
	if (r < 0)
		goto cleanup;
	have_worker = 1;
	printf("worker: %s\n", worker.value);
	r = do_export(c, &worker, o, deadline, e);
cleanup:
	/* Cleanup is not cancellable and has a deadline of its own. */
	if (have_worker) {
		sw_err_clear(&ce);
		if (vmw_worker_vm_destroy(c, &worker, sw_mono_ms() + 120000, NULL, &ce) < 0) {
			fprintf(stderr, "vmwctl: cleanup: %s\n", ce.msg);
			if (r == 0)
				r = ce.code, *e = ce;
		}
	}
	if (have_snap) {
		sw_err_clear(&ce);
		if (vmw_snapshot_remove(c, &snap, sw_mono_ms() + 600000, NULL, &ce) < 0) {
			fprintf(stderr, "vmwctl: cleanup: %s\n", ce.msg);
			if (r == 0)
				r = ce.code, *e = ce;
		}
	}
	return r;
}

static int
do_sweep(struct vmw_conn *c, const struct opts *o, int list_only, uint64_t deadline,
    struct sw_err *e)
{
	struct vmw_tagged_vm *vms = NULL;
	uint64_t older = 0;
	size_t n = 0, i;
	int64_t now = (int64_t)time(NULL);
	int r, failed = 0;

	if (!list_only && (o->older_than == NULL ||
	    sw_parse_duration(o->older_than, 100ull * 365 * 86400, &older) < 0))
		return sw_errf(e, -EINVAL, "sweep needs --older-than DURATION (e.g. 6h)");
	if ((r = vmw_worker_vm_list(c, &vms, &n, deadline, &cancelled, e)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		const struct vmw_tagged_vm *v = &vms[i];
		int old = v->created >= 0 && now - v->created >= (int64_t)older;

		if (list_only) {
			printf("%s %s tag=%s created=%" PRId64 "\n", v->vm.value, v->name, v->tag,
			    v->created);
			continue;
		}
		if (!old)
			continue;
		printf("%s %s %s\n", o->dry_run ? "would destroy" : "destroying", v->vm.value,
		    v->name);
		if (!o->dry_run && vmw_worker_vm_destroy(c, &v->vm, deadline, &cancelled, e) < 0) {
			fprintf(stderr, "vmwctl: %s: %s\n", v->vm.value, e->msg);
			failed++;
		}
	}
	free(vms);
	return failed ? sw_errf(e, SW_EREMOTE, "%d worker VM(s) not destroyed", failed) : 0;
}

static int
need_vm(struct vmw_conn *c, const struct opts *o, struct vmw_moref *vm, uint64_t deadline,
    struct sw_err *e)
{
	size_t n;

	if (o->vm == NULL)
		return sw_errf(e, -EINVAL, "--vm is required");
	/* A managed object id as printed by worker-create: "vm-123". */
	n = strlen(o->vm);
	if (n > 3 && n < sizeof(vm->value) && strncmp(o->vm, "vm-", 3) == 0 &&
	    strspn(o->vm + 3, "0123456789") == n - 3) {
		moref_of(vm, "VirtualMachine", o->vm);
		return 0;
	}
	return vmw_vm_find(c, VMW_VM_BY_ANY, o->vm, vm, deadline, &cancelled, e);
}

static int
run(struct vmw_conn *c, const char *cmd, const struct opts *o, uint64_t deadline,
    struct sw_err *e)
{
	struct vmw_moref vm, snap, worker;
	struct vmw_disk *d = NULL;
	const struct vmw_about *ab;
	int r;

	if (strcmp(cmd, "about") == 0) {
		ab = vmw_conn_about(c);
		printf("name: %s\nfull-name: %s\nversion: %s\nbuild: %s\napi-type: %s\n"
		    "api-version: %s\ninstance-uuid: %s\n", ab->name, ab->full_name, ab->version,
		    ab->build, ab->api_type, ab->api_version, ab->instance_uuid);
		return 0;
	}
	if (strcmp(cmd, "vm-info") == 0) {
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		return do_vm_info(c, &vm, deadline, e);
	}
	if (strcmp(cmd, "export") == 0) {
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		return do_export(c, &vm, o, deadline, e);
	}
	if (strcmp(cmd, "import") == 0)
		return do_import(c, o, deadline, e);
	if (strcmp(cmd, "power-off") == 0) {
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		return vmw_vm_power_off(c, &vm, deadline, &cancelled, e);
	}
	if (strcmp(cmd, "snapshot-create") == 0) {
		if (o->name == NULL)
			return sw_errf(e, -EINVAL, "--name is required");
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0 ||
		    (r = vmw_snapshot_create(c, &vm, o->name, NULL, o->quiesce, &snap, deadline,
		    &cancelled, e)) < 0)
			return r;
		printf("snapshot: %s\n", snap.value);
		return 0;
	}
	if (strcmp(cmd, "snapshot-remove") == 0) {
		if (o->snapshot == NULL)
			return sw_errf(e, -EINVAL, "--snapshot is required");
		moref_of(&snap, "VirtualMachineSnapshot", o->snapshot);
		return vmw_snapshot_remove(c, &snap, deadline, &cancelled, e);
	}
	if (strcmp(cmd, "snapshot-disk") == 0) {
		if (o->snapshot == NULL || o->disk == NULL)
			return sw_errf(e, -EINVAL, "--snapshot and --disk are required");
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		moref_of(&snap, "VirtualMachineSnapshot", o->snapshot);
		if ((r = vmw_snapshot_disk(c, &vm, &snap, o->disk, &d, deadline, &cancelled,
		    e)) < 0)
			return r;
		print_disk(d, "");
		vmw_disk_free(d);
		return 0;
	}
	if (strcmp(cmd, "worker-create") == 0) {
		if (o->snapshot == NULL || o->disk == NULL || o->name == NULL)
			return sw_errf(e, -EINVAL, "--snapshot, --disk and --name are required");
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		moref_of(&snap, "VirtualMachineSnapshot", o->snapshot);
		if ((r = make_worker(c, &vm, &snap, o->disk, o->name,
		    o->tag != NULL ? o->tag : o->name, &worker, deadline, e)) < 0)
			return r;
		printf("worker: %s\n", worker.value);
		return 0;
	}
	if (strcmp(cmd, "worker-destroy") == 0) {
		if (o->worker == NULL)
			return sw_errf(e, -EINVAL, "--worker is required");
		moref_of(&worker, "VirtualMachine", o->worker);
		return vmw_worker_vm_destroy(c, &worker, deadline, &cancelled, e);
	}
	if (strcmp(cmd, "worker-list") == 0)
		return do_sweep(c, o, 1, deadline, e);
	if (strcmp(cmd, "sweep") == 0)
		return do_sweep(c, o, 0, deadline, e);
	if (strcmp(cmd, "backup") == 0) {
		if ((r = need_vm(c, o, &vm, deadline, e)) < 0)
			return r;
		return do_backup(c, &vm, o, deadline, e);
	}
	return sw_errf(e, -EINVAL, "unknown command '%s' (see --help)", cmd);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'U' },
		{ "user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "thumbprint", required_argument, NULL, 'T' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "progress", no_argument, NULL, 'p' },
		{ "vm", required_argument, NULL, 'v' },
		{ "out", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "ovf", required_argument, NULL, 'f' },
		{ "like", required_argument, NULL, 'l' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "disk", required_argument, NULL, 'd' },
		{ "worker", required_argument, NULL, 'w' },
		{ "tag", required_argument, NULL, 'g' },
		{ "older-than", required_argument, NULL, 'O' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "quiesce", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	struct vmw_conn_opts co;
	struct vmw_conn *c = NULL;
	struct sw_err e;
	struct sigaction sa;
	char password[PASSWORD_MAX];
	uint64_t deadline;
	const char *cmd;
	int ch, r, tls_modes = 0;

	memset(&o, 0, sizeof(o));
	o.timeout_s = 21600;
	sw_err_clear(&e);
	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'U': o.url = optarg; break;
		case 'u': o.user = optarg; break;
		case 'P': o.password_file = optarg; break;
		case 'C': o.cacert = optarg; tls_modes++; break;
		case 'T': o.thumbprint = optarg; tls_modes++; break;
		case 'k': o.insecure = 1; tls_modes++; break;
		case 't':
			if (sw_parse_u64(optarg, 1, 30 * 86400, &o.timeout_s) < 0) {
				fprintf(stderr, "vmwctl: --timeout: 1..2592000 seconds\n");
				return 2;
			}
			break;
		case 'p': o.progress = 1; break;
		case 'v': o.vm = optarg; break;
		case 'o': o.out = optarg; break;
		case 'n': o.name = optarg; break;
		case 'f': o.ovf = optarg; break;
		case 'l': o.like = optarg; break;
		case 's': o.snapshot = optarg; break;
		case 'd': o.disk = optarg; break;
		case 'w': o.worker = optarg; break;
		case 'g': o.tag = optarg; break;
		case 'O': o.older_than = optarg; break;
		case 'D': o.dry_run = 1; break;
		case 'q': o.quiesce = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("vmwctl %s\n", SW_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || o.url == NULL || o.user == NULL) {
		usage(stderr);
		return 2;
	}
	if (tls_modes > 1) {
		fprintf(stderr, "vmwctl: choose one of --cacert, --thumbprint, --insecure\n");
		return 2;
	}
	cmd = argv[optind];
	if (read_password(o.password_file, password, sizeof(password), &e) < 0)
		return die(&e, "password");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);

	memset(&co, 0, sizeof(co));
	co.url = o.url;
	co.user = o.user;
	co.password = password;
	co.tls = o.insecure ? VMW_TLS_INSECURE : o.thumbprint != NULL ? VMW_TLS_THUMBPRINT :
	    VMW_TLS_CA;
	co.cacert = o.cacert;
	co.thumbprint = o.thumbprint;
	r = vmw_conn_new(&co, &c, &e);
	explicit_bzero(password, sizeof(password));
	if (r < 0)
		return die(&e, "connection");
	deadline = sw_mono_ms() + o.timeout_s * 1000u;
	if ((r = vmw_login(c, deadline, &cancelled, &e)) < 0) {
		vmw_conn_free(c);
		return die(&e, "login");
	}
	r = run(c, cmd, &o, deadline, &e);
	if (r < 0)
		(void)die(&e, cmd);
	{
		struct sw_err le;

		(void)vmw_logout(c, sw_mono_ms() + 10000, NULL, &le);
	}
	vmw_conn_free(c);
	return r < 0 ? 1 : 0;
}

/* QMP for disk replication set up by hand; see qmp_nbd.h. Event-loop thread. */
#include "qmp/qmp_nbd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "block/nbd_client.h"
#include "colo/disk.h"
#include "qmp/qmp.h"

/* blockdev-add waits this long at most for the server (the event loop waits too). */
#define NBD_CONNECT_TIMEOUT_MS 5000

static struct colo_disk *find_disk(struct qmp_nbd *n, const char *name)
{
	for (int i = 0; i < n->ndisks; i++)
		if (n->disks[i] && strcmp(colo_disk_name(n->disks[i]), name) == 0)
			return n->disks[i];
	return NULL;
}

static struct qmp_nbd_node *find_node(struct qmp_nbd *n, const char *name)
{
	for (int i = 0; i < QMP_NBD_MAX_NODES; i++)
		if (n->nodes[i].name[0] && strcmp(n->nodes[i].name, name) == 0)
			return &n->nodes[i];
	return NULL;
}

static const char *str_arg(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A port given as QEMU's string or as a number, into buf; NULL if neither. */
static const char *port_arg(json_t *o, char *buf, size_t len)
{
	json_t *p = json_object_get(o, "port");

	if (json_is_string(p))
		return json_string_value(p);
	if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 65535)
		return NULL;
	snprintf(buf, len, "%d", (int)json_integer_value(p));
	return buf;
}

/*
 * A socket address as our "tcp:HOST:PORT" / "unix:PATH": {type: inet, host,
 * port} or {type: unix, path}, the members directly in o or (QEMU's legacy
 * form, nbd-server-start's addr) under "data".
 */
static int socket_addr(json_t *o, char *out, size_t len, struct qmp_error *err)
{
	const char *type = str_arg(o, "type"), *host, *port, *path;
	json_t *data = json_object_get(o, "data");
	char pbuf[8];

	if (json_is_object(data))
		o = data;
	if (type && strcmp(type, "inet") == 0 && (host = str_arg(o, "host")) &&
	    (port = port_arg(o, pbuf, sizeof(pbuf)))) {
		snprintf(out, len, strchr(host, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", host, port);
		return 0;
	}
	if (type && strcmp(type, "unix") == 0 && (path = str_arg(o, "path"))) {
		snprintf(out, len, "unix:%s", path);
		return 0;
	}
	qmp_error_set(err, QMP_ERR_GENERIC,
		      "expected a socket address {\"type\": \"inet\", \"host\": H, \"port\": P} or "
		      "{\"type\": \"unix\", \"path\": P}");
	return -EINVAL;
}

/* ---- secondary: the NBD server ------------------------------------------ */

static json_t *cmd_nbd_server_start(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = { { "addr", QMP_ARG_OBJECT, true }, { NULL, 0, false } };
	struct qmp_nbd *n = opaque;
	char addr[300], why[256] = "";

	if (qmp_args_check(args, err, spec) < 0 || socket_addr(json_object_get(args, "addr"), addr,
							       sizeof(addr), err) < 0)
		return NULL;
	if (n->server) {
		qmp_error_set(err, QMP_ERR_GENERIC, "NBD server already running");
		return NULL;
	}
	n->server = nbd_service_start(addr, why, sizeof(why));
	if (!n->server)
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
	return NULL;
}

static json_t *cmd_nbd_server_add(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "device", QMP_ARG_STRING, true }, { "name", QMP_ARG_STRING, false },
		{ "writable", QMP_ARG_BOOL, false }, { NULL, 0, false },
	};
	struct qmp_nbd *n = opaque;
	const char *device, *name;
	struct colo_disk *d;
	struct nbd_export exp;
	int ret;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	device = str_arg(args, "device");
	name = str_arg(args, "name") ? str_arg(args, "name") : device;
	if (!n->server) {
		qmp_error_set(err, QMP_ERR_GENERIC, "NBD server not running");
		return NULL;
	}
	d = find_disk(n, device);
	if (!d || !colo_disk_export(d)) {
		qmp_error_set(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' is not a disk with replication=secondary",
			      device);
		return NULL;
	}
	if (!json_is_true(json_object_get(args, "writable"))) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Device '%s' takes the primary's writes: writable must be true",
			      device);
		return NULL;
	}
	exp = *colo_disk_export(d);
	exp.name = name;
	if ((ret = nbd_service_add_export(n->server, &exp)) < 0)
		qmp_error_set(err, QMP_ERR_GENERIC, "NBD export '%s': %s", name,
			      ret == -EEXIST ? "already exists" : strerror(-ret));
	return NULL;
}

static json_t *cmd_nbd_server_stop(json_t *args, struct qmp_error *err, void *opaque)
{
	struct qmp_nbd *n = opaque;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	if (!n->server) {
		qmp_error_set(err, QMP_ERR_GENERIC, "NBD server not running");
		return NULL;
	}
	nbd_service_stop(n->server);
	n->server = NULL;
	return NULL;
}

/* ---- primary: the link to the secondary's export ------------------------ */

static struct qmp_nbd_node *free_node(struct qmp_nbd *n)
{
	for (int i = 0; i < QMP_NBD_MAX_NODES; i++)
		if (!n->nodes[i].name[0])
			return &n->nodes[i];
	return NULL;
}

static json_t *cmd_blockdev_add(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "driver", QMP_ARG_STRING, true }, { "node-name", QMP_ARG_STRING, true },
		{ "server", QMP_ARG_OBJECT, true }, { "export", QMP_ARG_STRING, true },
		{ "detect-zeroes", QMP_ARG_STRING, false }, { NULL, 0, false },
	};
	struct qmp_nbd *n = opaque;
	const char *name;
	struct qmp_nbd_node *node;
	char addr[300], why[256];
	int ret;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	name = str_arg(args, "node-name");
	if (strcmp(str_arg(args, "driver"), "nbd") != 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "driver '%s' not supported (only nbd)", str_arg(args, "driver"));
		return NULL;
	}
	if (!*name || strlen(name) > QMP_NBD_NAME_MAX || find_node(n, name) || find_disk(n, name)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "node-name '%s' is empty, too long or in use", name);
		return NULL;
	}
	if (!(node = free_node(n))) {
		qmp_error_set(err, QMP_ERR_GENERIC, "at most %d nodes", QMP_NBD_MAX_NODES);
		return NULL;
	}
	if (socket_addr(json_object_get(args, "server"), addr, sizeof(addr), err) < 0)
		return NULL;
	ret = blk_nbd_connect_addr(addr, str_arg(args, "export"), NBD_CONNECT_TIMEOUT_MS, &node->be, &node->fd,
				   why, sizeof(why));
	if (ret < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
		return NULL;
	}
	snprintf(node->name, sizeof(node->name), "%s", name);
	node->attached_to = NULL;
	return NULL;
}

/* The disk took the node: the disk's earlier link, if any, is gone. */
static void node_taken(struct qmp_nbd *n, struct qmp_nbd_node *node, struct colo_disk *d)
{
	for (int i = 0; i < QMP_NBD_MAX_NODES; i++)
		if (n->nodes[i].attached_to == d)
			n->nodes[i].attached_to = NULL;
	node->attached_to = d;
	node->be = NULL;
}

static bool node_in_use(const struct qmp_nbd_node *node)
{
	return node->attached_to && colo_disk_has_replica(node->attached_to);
}

/*
 * x-blockdev-change {parent: DISK, node: NODE}: DISK's writes go to NODE too
 * (QEMU hot-adds it to the quorum). {parent: DISK, child: "children.1"}: no
 * longer (the replica's link is closed).
 */
static json_t *cmd_x_blockdev_change(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "parent", QMP_ARG_STRING, true }, { "child", QMP_ARG_STRING, false },
		{ "node", QMP_ARG_STRING, false }, { NULL, 0, false },
	};
	struct qmp_nbd *n = opaque;
	const char *child, *node_name;
	struct qmp_nbd_node *node;
	struct colo_disk *d;
	int ret;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	child = str_arg(args, "child");
	node_name = str_arg(args, "node");
	d = find_disk(n, str_arg(args, "parent"));
	if (!d || colo_disk_export(d)) {
		qmp_error_set(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' is not a disk with replication=primary",
			      str_arg(args, "parent"));
		return NULL;
	}
	if (!child == !node_name) {
		qmp_error_set(err, QMP_ERR_GENERIC, "give either 'node' (to add) or 'child' (to remove)");
		return NULL;
	}
	if (child) {
		if (strcmp(child, "children.1") != 0 || colo_disk_detach_replica(d) < 0)
			qmp_error_set(err, QMP_ERR_GENERIC, "Node '%s' has no child '%s' (its replica is children.1)",
				      colo_disk_name(d), child);
		return NULL;
	}
	if (!(node = find_node(n, node_name)) || node->attached_to) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Node '%s' not found or not free", node_name);
		return NULL;
	}
	ret = colo_disk_attach_replica(d, node->be, node->fd); /* takes node->be, also on failure */
	node_taken(n, node, d);
	if (ret < 0) {
		node->attached_to = NULL;
		node->name[0] = '\0';
		qmp_error_set(err, QMP_ERR_GENERIC, "cannot add '%s' to '%s': %s", node_name, colo_disk_name(d),
			      ret == -EBUSY ? "it has a replica already" : ret == -EINVAL ? "sizes differ" : strerror(-ret));
	}
	return NULL;
}

static json_t *cmd_blockdev_del(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = { { "node-name", QMP_ARG_STRING, true }, { NULL, 0, false } };
	struct qmp_nbd *n = opaque;
	struct qmp_nbd_node *node;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	if (!(node = find_node(n, str_arg(args, "node-name")))) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Failed to find node with node-name='%s'",
			      str_arg(args, "node-name"));
		return NULL;
	}
	if (node_in_use(node)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Node '%s' is busy: %s writes to it (x-blockdev-change it out first)",
			      node->name, colo_disk_name(node->attached_to));
		return NULL;
	}
	blk_backend_close(node->be); /* NULL if a disk took it: closed with the replica */
	*node = (struct qmp_nbd_node){ .fd = -1 };
	return NULL;
}

int qmp_nbd_bind(struct qmp_server *s, struct qmp_nbd *n)
{
	static const struct qmp_command_def cmds[] = {
		{ "nbd-server-start", cmd_nbd_server_start }, { "nbd-server-add", cmd_nbd_server_add },
		{ "nbd-server-stop", cmd_nbd_server_stop },   { "blockdev-add", cmd_blockdev_add },
		{ "blockdev-del", cmd_blockdev_del },         { "x-blockdev-change", cmd_x_blockdev_change },
	};

	return qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), n);
}

void qmp_nbd_cleanup(struct qmp_nbd *n)
{
	nbd_service_stop(n->server);
	n->server = NULL;
	for (int i = 0; i < QMP_NBD_MAX_NODES; i++) {
		blk_backend_close(n->nodes[i].be);
		n->nodes[i] = (struct qmp_nbd_node){ .fd = -1 };
	}
}

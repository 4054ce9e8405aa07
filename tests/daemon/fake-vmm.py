#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A stand-in for majordome-vmm that speaks the control protocol
(docs/control-protocol.md) with scripted misbehaviour, so that tests can
check what majordomed makes of event streams a real VMM never sends.

majordomed runs it as `fake-vmm.py serve --socket PATH --control-fd 3`; the
CONFIGURE parts that come first are answered -EOPNOTSUPP like any unknown type
(the daemon does not wait for their replies).
FAKE_VMM_SCENARIO picks what it does once the daemon subscribes:
  hostile  events out of order, duplicated, oversized, unknown, malformed,
           a panic twice, and events after `exiting`; the state they leave
           if all are ignored correctly is "paused"
  v2       answers every request as a version-2 VMM (-EPROTO)
  old      a version-1 VMM from before events: subscribe is -EOPNOTSUPP
  device-error  ready, running, then two device-error events (the second's
           reason with an escape and invalid UTF-8) and a malformed one
  balloon  ready, running, the balloon reached 16 MiB, a malformed
           balloon-reached (7 bytes), then 8 MiB reached
  normal   ready, running
In any scenario, once the file FAKE_VMM_V2_FLAG names exists, requests are
answered as version 2 (a VMM "upgraded" under a running daemon).
With FAKE_VMM_CONFIG_RECORD set, the configuration the daemon sent is
decoded and written there as JSON once its last part came (written whole,
then renamed): the header's numbers and each device record, the GPU's
(kind 8) field by field with what its compositor descriptor is (a socket,
its type and peer address); the fake writes "fake-vmm\n" on that socket so
a test's listener sees the connection is the one the VMM holds."""

import array
import fcntl
import json
import os
import selectors
import socket
import stat
import struct
import sys

MAGIC = 0x4D444A4D
HEADER = struct.Struct("<IHHIiII")
REPLY = 0x8000
INFO, PAUSE, RESUME, STOP, SUBSCRIBE, CONFIGURE = 1, 2, 3, 4, 5, 6
READY, STATE_CHANGED, GUEST_PANIC, EXITING, DEVICE_ERROR = 0x4001, 0x4002, 0x4003, 0x4004, 0x4005
BALLOON_REACHED = 0x4006
RUNNING, PAUSED = 1, 2
EPROTO, EOPNOTSUPP = 71, 95

scenario = os.environ.get("FAKE_VMM_SCENARIO", "normal")
v2_flag = os.environ.get("FAKE_VMM_V2_FLAG", "")
config_record = os.environ.get("FAKE_VMM_CONFIG_RECORD", "")
state = RUNNING
# The configure parts so far: the blob's bytes and the descriptors, in order.
config_blob = bytearray()
config_fds = []
kept_fds = []  # held for the VMM's life, as a real one would
FD_NONE = 0xFFFFFFFF
GPU = 8
VIDEO_DECODER = 9
VIDEO_ENCODER = 10


def log(msg):
    sys.stderr.write("fake-vmm: %s\n" % msg)
    sys.stderr.flush()


def msg(type_, id_, payload=b"", status=0, version=1):
    return HEADER.pack(MAGIC, version, type_, id_, status, len(payload), 0) + payload


def ready(st):
    # state, vcpus, memory, cid, one device (the host bridge)
    return struct.pack("<IIQII", st, 1, 64 << 20, 0, 1) + struct.pack("<HHBBBB", 0x8086, 0x29C0, 0, 0, 0, 0)


def state_changed(st):
    return struct.pack("<II", st, 0)


def events_for_subscriber():
    if scenario == "hostile":
        reason = b"the guest kernel panicked"
        return [
            msg(STATE_CHANGED, 1, state_changed(RUNNING)),        # before ready: ignored
            msg(READY, 2, ready(PAUSED)),                         # the VM is up, paused
            msg(READY, 2, ready(RUNNING)),                        # duplicate id: ignored
            msg(STATE_CHANGED, 1, state_changed(RUNNING)),        # stale id: ignored
            msg(STATE_CHANGED, 3, state_changed(RUNNING) + bytes(5000)),  # oversized: dropped
            msg(0x4077, 4, b"what is this"),                      # unknown type: ignored
            msg(STATE_CHANGED, 5, b"\x01\x00\x00\x00"[:3]),       # malformed: ignored
            msg(GUEST_PANIC, 6, struct.pack("<II", 1, 1)),        # panic, action pause
            msg(GUEST_PANIC, 7, struct.pack("<II", 1, 1)),        # again: one signal only
            msg(EXITING, 8, struct.pack("<iI", 0, len(reason)) + reason),
            msg(STATE_CHANGED, 9, state_changed(RUNNING)),        # after exiting: ignored
            msg(READY, 10, ready(RUNNING)),                       # after exiting: ignored
        ]
    if scenario == "device-error":
        def dev_error(slot, reason):
            return struct.pack("<HHBBBBI", 0x1AF4, 0x105A, 0, slot, 0, 0, len(reason)) + reason
        return [
            msg(READY, 1, ready(RUNNING)),
            msg(DEVICE_ERROR, 2, dev_error(3, b"the back-end hung up")),
            msg(DEVICE_ERROR, 3, dev_error(4, b"bad \x1b[31m\xff")),
            msg(DEVICE_ERROR, 4, dev_error(5, b"short")[:14]),   # reason_length past the payload
        ]
    if scenario == "balloon":
        mib = 1024 * 1024
        return [
            msg(READY, 1, ready(RUNNING)),
            msg(BALLOON_REACHED, 2, struct.pack("<Q", 16 * mib)),
            msg(BALLOON_REACHED, 3, struct.pack("<Q", 4 * mib)[:7]),  # malformed: ignored
            msg(BALLOON_REACHED, 4, struct.pack("<Q", 8 * mib)),
        ]
    return [msg(READY, 1, ready(RUNNING))]


def describe_socket(fd):
    """What a descriptor the daemon sent is, for the record."""
    st = os.fstat(fd)
    info = {"socket": stat.S_ISSOCK(st.st_mode), "o_path": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_PATH),
            "dev": st.st_dev, "ino": st.st_ino}
    if info["socket"] and info["o_path"]:
        # A handle to the socket's inode: connect through it, as
        # majordome-gpu does for each cross-domain context.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect("/proc/self/fd/%d" % fd)
            info["connected"] = True
        except OSError as e:
            info["connected"] = False
            info["connect_error"] = e.strerror
            s.close()
    elif info["socket"]:
        s = socket.socket(fileno=os.dup(fd))
    if info["socket"] and info.get("connected", True):
        try:
            info["type"] = {socket.SOCK_STREAM: "stream", socket.SOCK_SEQPACKET: "seqpacket",
                            socket.SOCK_DGRAM: "dgram"}.get(s.type, str(s.type))
            info["family"] = "unix" if s.family == socket.AF_UNIX else str(s.family)
            try:
                info["peer"] = s.getpeername()
            except OSError as e:
                info["peer"] = None
                info["peer_error"] = e.strerror
            try:
                s.send(b"fake-vmm\n")
                info["wrote"] = True
            except OSError as e:
                info["wrote"] = False
                info["write_error"] = e.strerror
        finally:
            s.close()
    return info


def decode_config(blob, fds):
    """The blob of docs/control-protocol.md "configure" as a dict."""
    (version, flags, mem, vcpus, on_panic, serial_max, serial, serial_fd, kernel_fd, initrd_fd, cmdline_length,
     n_devices) = struct.unpack_from("<IIQIIQIIIIII", blob, 0)
    off = 56 + cmdline_length
    rec = {"config_version": version, "flags": flags, "mem_size": mem, "vcpus": vcpus, "n_fds": len(fds),
           "cmdline": bytes(blob[56:off]).decode("ascii", "replace"), "devices": []}
    for _ in range(n_devices):
        kind, length = struct.unpack_from("<HH", blob, off)
        body = bytes(blob[off + 4:off + 4 + length])
        off += 4 + length
        dev = {"kind": kind, "length": length}
        if kind == GPU and length == 32:
            backend, width, height, displays, max_memory, fd_index, context_types = struct.unpack("<IIIIQII", body)
            dev.update(backend=backend, width=width, height=height, displays=displays, max_memory=max_memory,
                       context_types=context_types, wayland_fd=None)
            if fd_index != FD_NONE:
                dev["wayland_fd"] = dict(index=fd_index, **describe_socket(fds[fd_index])) \
                    if fd_index < len(fds) else {"index": fd_index, "error": "out of range"}
        elif kind in (VIDEO_DECODER, VIDEO_ENCODER) and length == 4:
            dev.update(backend=struct.unpack("<I", body)[0])
        rec["devices"].append(dev)
    rec["trailing"] = len(blob) - off
    return rec


def take_configure(data, fds):
    """One configure part; the record is written after the last."""
    part, n_parts = struct.unpack_from("<HH", data, HEADER.size)
    config_blob.extend(data[HEADER.size + 8:])
    config_fds.extend(fds)
    if part + 1 != n_parts or not config_record:
        return
    try:
        rec = decode_config(config_blob, config_fds)
    except (struct.error, IndexError) as e:
        rec = {"error": str(e)}
    with open(config_record + ".new", "w") as f:
        json.dump(rec, f)
    os.rename(config_record + ".new", config_record)


def answer(sock, data, fds=()):
    global state
    if len(data) < HEADER.size:
        return
    magic, version, type_, id_, status, length, flags = HEADER.unpack_from(data)
    if type_ == CONFIGURE:
        take_configure(data, fds)
        kept_fds.extend(fds)
        sock.send(msg(type_ | REPLY, id_, status=-EOPNOTSUPP))
        return
    for fd in fds:
        os.close(fd)
    if scenario == "v2" or (v2_flag and os.path.exists(v2_flag)):
        sock.send(msg(type_ | REPLY, id_, status=-EPROTO, version=2))
        return
    if type_ == INFO:
        sock.send(msg(INFO | REPLY, id_, struct.pack("<IIQQII", state, 1, 64 << 20, 0, os.getpid(), 0)))
    elif type_ in (PAUSE, RESUME):
        state = PAUSED if type_ == PAUSE else RUNNING
        sock.send(msg(type_ | REPLY, id_))
    elif type_ == STOP:
        sock.send(msg(STOP | REPLY, id_))
        log("stop requested")
        sys.exit(0)
    elif type_ == SUBSCRIBE and scenario == "old":
        sock.send(msg(SUBSCRIBE | REPLY, id_, status=-EOPNOTSUPP))
    elif type_ == SUBSCRIBE:
        sock.send(msg(SUBSCRIBE | REPLY, id_))
        for m in events_for_subscriber():
            sock.send(m)
    else:
        sock.send(msg(type_ | REPLY, id_, status=-EOPNOTSUPP))


def main():
    args = sys.argv[1:]
    path = args[args.index("--socket") + 1] if "--socket" in args else None
    control_fd = int(args[args.index("--control-fd") + 1]) if "--control-fd" in args else -1
    sel = selectors.DefaultSelector()
    if path:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(path)
        listener.listen(4)
        sel.register(listener, selectors.EVENT_READ, "listen")
    if control_fd >= 0:
        sel.register(socket.socket(fileno=control_fd), selectors.EVENT_READ, "conn")
    log("scenario %s, pid %d" % (scenario, os.getpid()))
    while True:
        for key, _ in sel.select():
            if key.data == "listen":
                conn, _ = key.fileobj.accept()
                sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            fds = array.array("i")
            try:
                data, ancdata, _, _ = key.fileobj.recvmsg(8192, socket.CMSG_SPACE(8 * fds.itemsize))
            except OSError:
                data = b""
            for level, type_, cdata in ancdata if data else ():
                if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            answer(key.fileobj, data, list(fds))


if __name__ == "__main__":
    main()

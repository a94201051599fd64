#!/usr/bin/env python3
"""Checks docs/schema/*.schema.json against the worker's own parser (proto/).

An independent validator (python3-jsonschema, draft 2020-12) must accept
every command and event the C parser accepts and refuse every one it refuses,
naming the same field: the location of the first schema error (the instance
path, plus the member for a missing one; "body" for the top level) must be
the field the C message starts with ("args.account_id: ...").  What JSON
Schema cannot say (duplicate keys, fractions like 2.0, non-finite numbers,
nesting depth, body size, UTF-8) is checked by strict_load() below, which
refuses at the JSON level as the worker does before it reads any field.

usage:
  proto_schema.py test SCHEMA_DIR FIXTURE_DIR [--snapctl PATH] [--events DIR]
      [--broken]
        the test; prints "ok"/"FAIL" lines and "N passed, N failed";
        --snapctl: differential cases judged by `snapctl submit --dry-run`;
        --events: *.json events the C code wrote (must validate);
        --broken: expect the fixtures to catch the schemas (prints only the
        number of checks that failed, exits 0 when there was at least one)
  proto_schema.py validate SCHEMA_DIR command|event FILE...
        validates files as a publisher would; prints the verdict per file
"""
import decimal
import glob
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema
except ImportError:
    print("FAIL python3 module jsonschema missing: install Debian package python3-jsonschema "
          "(scripts/deps.sh)")
    print("0 passed, 1 failed")
    sys.exit(1)

BODY_MAX = 1024 * 1024      # PROTO_BODY_MAX
DEPTH_MAX = 16              # PROTO_DEPTH_MAX
ID1 = "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f"


# ------------------------------------------------------------ strict JSON

class Rejected(Exception):
    """A body refused at the JSON level; field is "body" or the worker's field."""

    def __init__(self, field, why):
        super().__init__("%s: %s" % (field, why))
        self.field = field
        self.why = why


class _Obj(dict):
    """A JSON object that remembers the keys given more than once."""
    __slots__ = ("dups",)


def _pairs(pairs):
    o = _Obj()
    o.dups = []
    for k, v in pairs:
        if k in o:
            o.dups.append(k)
        o[k] = v   # keeps the first position and the last value, as json-c does
    return o


def _no_constant(name):
    raise ValueError("not valid JSON: %s" % name)


def _depth(v):
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def _first_dup(v, path):
    """The path of the first object (document order, depth first) with a duplicate key."""
    if isinstance(v, _Obj):
        if v.dups:
            return path or "body"
        for k, x in v.items():
            r = _first_dup(x, path + "." + k if path else k)
            if r:
                return r
    elif isinstance(v, list):
        for i, x in enumerate(v):
            r = _first_dup(x, "%s[%d]" % (path, i))
            if r:
                return r
    return None


def strict_load(raw):
    """Parses raw (bytes) as the worker does, or raises Rejected.

    Numbers with a fraction or an exponent become decimal.Decimal, which
    JSON Schema validators do not count as integers (a float 2.0 they
    would); NaN and Infinity, raw control characters in strings, trailing
    data, invalid UTF-8, a NUL byte, more than DEPTH_MAX levels and duplicate
    keys are refused."""
    if len(raw) > BODY_MAX:
        raise Rejected("body", "larger than %d bytes" % BODY_MAX)
    if len(raw) == 0:
        raise Rejected("body", "empty")
    if b"\0" in raw:
        raise Rejected("body", "contains a NUL byte")
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise Rejected("body", "not valid UTF-8 (%s)" % e.reason)
    try:
        v = json.loads(text, object_pairs_hook=_pairs, parse_float=decimal.Decimal,
                       parse_constant=_no_constant)
    except RecursionError:
        raise Rejected("body", "nested deeper than %d levels" % DEPTH_MAX)
    except ValueError as e:   # json.JSONDecodeError, the constants, over-long integers
        raise Rejected("body", "not valid JSON: %s" % e)
    if _depth(v) > DEPTH_MAX:
        raise Rejected("body", "nested deeper than %d levels" % DEPTH_MAX)
    if isinstance(v, _Obj) and "id" in v.dups:
        raise Rejected("id", "given more than once")
    if isinstance(v, _Obj) and "type" in v.dups:
        raise Rejected("type", "given more than once")
    dup = _first_dup(v, "")
    if dup:
        raise Rejected(dup, "object has a duplicate key")
    return v


# ---------------------------------------------------------------- schemas

class Schemas:
    def __init__(self, sdir):
        self.dir = sdir
        self.docs = {}
        for path in sorted(glob.glob(os.path.join(sdir, "*.schema.json"))):
            with open(path, "rb") as f:
                doc = json.loads(f.read().decode("utf-8"))
            self.docs[os.path.basename(path)] = doc
        try:
            from referencing import Registry, Resource
            reg = Registry().with_resources(
                [(d["$id"], Resource.from_contents(d)) for d in self.docs.values()])
            self._make = lambda s: jsonschema.Draft202012Validator(s, registry=reg)
        except ImportError:   # jsonschema before 4.18 (Debian 12 has 4.10)
            store = {d["$id"]: d for d in self.docs.values()}
            self._make = lambda s: jsonschema.Draft202012Validator(
                s, resolver=jsonschema.RefResolver.from_schema(s, store=store))
        self.validators = {name: self._make(d) for name, d in self.docs.items()}

    def first_error(self, name, instance):
        return next(iter(self.validators[name].iter_errors(instance)), None)


def location(err):
    """The field an error names, in the worker's notation (args.vm.uuid, result.files[2])."""
    parts = list(err.absolute_path)
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [k for k in err.validator_value if k not in err.instance]
        if missing:
            parts.append(missing[0])
    s = ""
    for p in parts:
        if isinstance(p, int):
            s += "[%d]" % p
        else:
            s += ("." if s else "") + str(p)
    return s or "body"


def judge(schemas, name, raw):
    """("valid", None), ("json", field) or ("schema", field, message)."""
    try:
        v = strict_load(raw)
    except Rejected as r:
        return ("json", r.field)
    err = schemas.first_error(name, v)
    if err is None:
        cross = cross_member(v)
        if cross is not None:
            return ("schema", cross[0], cross[1])
        return ("valid", None)
    return ("schema", location(err), err.message[:200])


def cross_member(v):
    """The rules across two members, which JSON Schema cannot state (docs/schema/README.md):
    CopyTemplate's unique_name must equal the name its path ends in (one trailing .ova
    dropped).  Applied after the schemas accept: (field, message) or None."""
    if not isinstance(v, dict) or v.get("type") != "CopyTemplate":
        return None
    a = v.get("args")
    if not isinstance(a, dict):
        return None
    un, path = a.get("unique_name"), a.get("path")
    if not isinstance(un, str) or not isinstance(path, str):
        return None
    if path.endswith(".ova"):
        path = path[:-4]
    if path.rsplit("/", 1)[-1] != un:
        return ("args.unique_name", "must be the name args.path ends in (cross-member rule)")
    return None


JSON_LEVEL = ("object has a duplicate key", "given more than once")


def expected_kind(message):
    """Whether the worker's message is a JSON-level refusal (strict_load's)."""
    field, _, why = message.partition(": ")
    if why.startswith(JSON_LEVEL):
        return "json"
    if field == "body" and why != "must be a JSON object":
        return "json"
    return "schema"


def same_field(want, got):
    if "[]" in want:
        got = re.sub(r"\[\d+\]", "[]", got)
    return want == got


# ------------------------------------------------------------------ tests

class Tally:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = 0
        self.quiet = quiet

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            if not self.quiet:
                print("ok   %s" % what)
        else:
            self.failed += 1
            if not self.quiet:
                print("FAIL %s%s" % (what, (": " + detail) if detail else ""))


def read_err(path):
    d = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(": ")
            d[k] = v
    return d


TYPES = ["CreateSnapshot", "DeleteSnapshot", "CreateTemplate", "RegisterTemplate", "CopyTemplate",
         "DeleteTemplate", "ExtractTemplate", "CreateVolume", "ExtractVolume"]


def json_c_scalar(raw):
    """Whether raw is a bare number or literal (5, null): the worker's JSON reader (json-c)
    cannot tell where one ends without more input and says "unexpected end of data" where it
    would say "must be a JSON object" of an array or a string; both refuse the body."""
    try:
        v = json.loads(raw.decode("utf-8"))
    except ValueError:
        return False
    return not isinstance(v, (dict, list, str))


def verdict_matches(v, message, raw=None):
    """Whether judge()'s verdict v is the refusal the worker's message describes."""
    field = message.partition(": ")[0]
    kind = expected_kind(message)
    if (message == "body: not valid JSON: unexpected end of data" and raw is not None and
            json_c_scalar(raw)):
        kind = "schema"
    return v[0] == kind and same_field(field, v[1])


def show(v):
    if v[0] == "valid":
        return "accepted"
    if v[0] == "json":
        return "refused at the JSON level at %s" % v[1]
    return "first schema error at %s (%s)" % (v[1], v[2])


def test_meta(schemas, t):
    for name, doc in schemas.docs.items():
        try:
            jsonschema.Draft202012Validator.check_schema(doc)
            ok, why = True, ""
        except jsonschema.SchemaError as e:
            ok, why = False, e.message
        t.check(ok, "%s is a valid draft 2020-12 schema" % name, why)
    want = {"command.schema.json", "event.schema.json"} | {n + ".schema.json" for n in TYPES}
    t.check(want <= set(schemas.docs), "a schema for every command type, the envelope and events",
            "missing: %s" % sorted(want - set(schemas.docs)))


def test_cancel(schemas, t):
    """cancel.schema.json: the request and the worker's answer ($defs/answer)."""
    if "cancel.schema.json" not in schemas.docs:
        t.check(False, "cancel.schema.json exists", "missing")
        return
    uid = "4b0a5c1e-8d9f-4c55-9a39-1f7b0d1c2e3f"
    good = [{"version": 1, "cancel": uid}, {"version": 1, "cancel": uid.upper(), "why": "x"}]
    bad = [({"version": 1}, "cancel"), ({"version": 2, "cancel": uid}, "version"),
           ({"version": 1, "cancel": "nope"}, "cancel"), ({"version": 1, "cancel": 7}, "cancel")]
    for inst in good:
        err = schemas.first_error("cancel.schema.json", inst)
        t.check(err is None, "cancel request %s accepted" % json.dumps(inst), err and err.message)
    for inst, field in bad:
        err = schemas.first_error("cancel.schema.json", inst)
        t.check(err is not None and location(err) == field,
                "cancel request %s refused at %s" % (json.dumps(inst), field),
                err.message if err else "accepted")
    ans = schemas._make({"$ref": "cancel.schema.json#/$defs/answer",
                         "$id": "https://snapworker.invalid/schema/1/cancel-answer-ref.json"})
    for inst, want in [({"version": 1, "cancel": uid, "status": "cancelling", "worker": "w1:4"}, True),
                       ({"version": 1, "cancel": uid, "status": "finished", "outcome": "failed"}, True),
                       ({"version": 1, "cancel": uid, "status": "finished"}, False),
                       ({"version": 1, "cancel": uid, "status": "gone"}, False)]:
        err = next(iter(ans.iter_errors(inst)), None)
        t.check((err is None) == want, "cancel answer %s %s" % (json.dumps(inst),
                "accepted" if want else "refused"), err.message if err else "accepted")


def test_valid_commands(schemas, fdir, t):
    for path in sorted(glob.glob(os.path.join(fdir, "*.json"))):
        base = os.path.basename(path)
        with open(path, "rb") as f:
            raw = f.read()
        tname = base.split("-")[0].split(".")[0]
        v = judge(schemas, "command.schema.json", raw)
        t.check(v[0] == "valid", "valid %s: command.schema.json accepts it" % base, show(v))
        v = judge(schemas, tname + ".schema.json", raw)
        t.check(v[0] == "valid", "valid %s: %s.schema.json accepts it" % (base, tname), show(v))
        others = [n for n in TYPES if n != tname]
        bad = [n for n in others
               if judge(schemas, n + ".schema.json", raw)[:2] != ("schema", "type")]
        t.check(not bad, "valid %s: the other types' schemas refuse it at type" % base,
                "not refused at type by %s" % bad)


def test_invalid_commands(schemas, fdir, t):
    paths = sorted(glob.glob(os.path.join(fdir, "invalid", "*.json")))
    t.check(len(paths) >= 50, "at least 50 invalid command fixtures (%d)" % len(paths))
    for path in paths:
        base = os.path.basename(path)
        with open(path, "rb") as f:
            raw = f.read()
        err = read_err(path[:-5] + ".err")
        msg = err["message"]
        v = judge(schemas, "command.schema.json", raw)
        t.check(verdict_matches(v, msg), "invalid/%s refused where the worker refuses it (%s)"
                % (base, msg.partition(": ")[0]), "worker: %s; schema: %s" % (msg, show(v)))
        if err.get("type", "-") in TYPES and v[0] == "schema":
            v2 = judge(schemas, err["type"] + ".schema.json", raw)
            t.check(v2[:2] == v[:2], "invalid/%s: %s.schema.json names the same field"
                    % (base, err["type"]), show(v2))


def test_events(schemas, fdir, t, gen_dir):
    evdir = os.path.join(fdir, "events")
    paths = sorted(glob.glob(os.path.join(evdir, "*.json")))
    statuses = set()
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        v = judge(schemas, "event.schema.json", raw)
        t.check(v[0] == "valid", "event %s accepted" % os.path.basename(path), show(v))
        if v[0] == "valid":
            statuses.add(strict_load(raw)["status"])
    t.check(statuses == {"progress", "succeeded", "failed", "retrying", "waiting"},
            "the event fixtures cover every status", "covered: %s" % sorted(statuses))
    ipaths = sorted(glob.glob(os.path.join(evdir, "invalid", "*.json")))
    t.check(len(ipaths) >= 10, "at least 10 invalid event fixtures (%d)" % len(ipaths))
    for path in ipaths:
        with open(path, "rb") as f:
            raw = f.read()
        msg = read_err(path[:-5] + ".err")["message"]
        v = judge(schemas, "event.schema.json", raw)
        t.check(verdict_matches(v, msg), "invalid event %s refused where the worker refuses it (%s)"
                % (os.path.basename(path), msg.partition(": ")[0]),
                "worker: %s; schema: %s" % (msg, show(v)))
    if gen_dir:
        gen = sorted(glob.glob(os.path.join(gen_dir, "*.json")))
        t.check(len(gen) > 0, "events written by snapworker run-once (%d)" % len(gen))
        for path in gen:
            with open(path, "rb") as f:
                raw = f.read().rstrip(b"\n")
            v = judge(schemas, "event.schema.json", raw)
            t.check(v[0] == "valid", "run-once event %s accepted" % os.path.basename(path),
                    show(v) + " in " + raw[:300].decode("utf-8", "replace"))


# ---------------------------------------------------- differential cases

def _base(tname):
    """A valid command of each type, as a dict."""
    store = {"url": "nfs://10.0.0.5/export/secondary"}
    vc = {"url": "https://vc1.example.org/sdk", "credentials": "vc1"}
    args = {
        "CreateSnapshot": {"vm": {"uuid": "42153c36-3f9e-8c43-1b2a-7d1f5e6a9b0c"},
                           "disk": "[ds1] i-2-3-VM/ROOT-3.vmdk", "account_id": 2, "volume_id": 13},
        "DeleteSnapshot": {"path": "snapshots/2/13/x/x"},
        "CreateTemplate": {"account_id": 2, "template_id": 201, "snapshot_path": "snapshots/2/13/x/x"},
        "RegisterTemplate": {"url": "https://dl.example.org/t.ova", "account_id": 2, "template_id": 203},
        "CopyTemplate": {"path": "template/tmpl/2/201/t", "dest_store": {"url": "nfs://h2/e"}},
        "DeleteTemplate": {"path": "template/tmpl/2/201/t"},
        "ExtractTemplate": {"path": "template/tmpl/2/201/t"},
        "CreateVolume": {"source_path": "snapshots/2/13/x/x", "datastore": "ds1", "name": "DATA-27"},
        "ExtractVolume": {"vm": {"name": "i-2-3-VM"}, "disk": "[ds1] i-2-3-VM/DATA-4.vmdk",
                          "account_id": 2, "volume_id": 14},
    }[tname]
    c = {"version": 1, "id": ID1, "type": tname}
    if tname in ("CreateSnapshot", "CreateVolume", "ExtractVolume"):
        c["vcenter"] = vc
    c["store"] = store
    c["args"] = args
    return c


_ABSENT = object()


def _with(tname, **changes):
    """The base command of tname with members replaced: key "args__vm__name" is args.vm.name;
    the value _ABSENT removes the member."""
    c = json.loads(json.dumps(_base(tname)))
    for key, val in changes.items():
        parts = key.split("__")
        o = c
        for p in parts[:-1]:
            o = o.setdefault(p, {})
        if val is _ABSENT:
            o.pop(parts[-1], None)
        else:
            o[parts[-1]] = val
    return json.dumps(c, ensure_ascii=False).encode("utf-8")


def differential_cases():
    """(name, body bytes): edge cases on every rule, valid and invalid."""
    W = _with
    cs = []

    def add(name, body):
        cs.append((name, body))

    x = "x"
    # install paths: the one trailing .ova, components, lengths, characters
    for i, p in enumerate(["a/b.ova", "a/..ova", "a/.ova", ".ova", "....ova", "...ova", "..ova",
                           "a.ova.ova", "x/" + x * 255, x * 256, x * 255 + ".ova", x * 256 + ".ova",
                           "./a", "a/.", "a/./b", "a//b", "/a", "a/", "a\\b", "a\x7fb", "a\nb",
                           "a/b\n", "\u00e9t\u00e9/\u00fc", "a b/c", "...", "a/..", "..", ".",
                           "/".join([x * 99] * 10) + "/" + x * 34, "/".join([x * 99] * 10) + "/" + x * 35,
                           "", "a\u0085b", "a/b.OVA", "a/b.ova/c"]):
        add("path-%02d %r" % (i, p[:40]), W("DeleteSnapshot", args__path=p))
    add("template path .ova", W("ExtractTemplate", args__path="template/tmpl/2/201/t.ova"))
    add("source_path ..", W("CreateVolume", args__source_path="snapshots/../x"))
    add("snapshot_path number", W("CreateTemplate", args__snapshot_path=5))
    # datastore paths
    for i, d in enumerate(["[ds] a.vmdk", "[ds] .vmdk", "[ds] a/.vmdk", "[ds] ..vmdk", "[ds]a.vmdk",
                           "[ds]  a.vmdk", "[d/s] a.vmdk", "[d[s] a.vmdk", "[] a.vmdk",
                           "[" + "d" * 255 + "] a.vmdk", "[" + "d" * 256 + "] a.vmdk", "[ds] a.VMDK",
                           "[ds] a.vmdk/", "[ds] ../a.vmdk", "[ds] a/../b.vmdk", "[ds] " + x * 250 + ".vmdk",
                           "[ds] " + x * 251 + ".vmdk", "[ds] a\\b.vmdk", "[ds] /a.vmdk", "[ds] a//b.vmdk",
                           "[ds]", "[ds] ", "ds] a.vmdk", "[d]s] a.vmdk", "[ds] a b/c d.vmdk",
                           "[ds] a.vmdk\n", "[ds] " + "/".join([x * 200] * 5)[:1010] + ".vmdk"]):
        add("disk-%02d %r" % (i, d[:40]), W("CreateSnapshot", args__disk=d))
    # vm
    for i, vm in enumerate([{"uuid": None, "name": "x"}, {"uuid": None}, {"name": ""}, {"uuid": x * 65},
                            {"uuid": "bad", "name": "x"}, {}, None, "vm", {"name": x * 255},
                            {"name": x * 256}, {"name": "a\u0085b"}, {"name": "a\x7f"},
                            {"uuid": "42153C36-3F9E-8C43-1B2A-7D1F5E6A9B0C"},
                            {"uuid": "42153c36-3f9e-8c43-1b2a-7d1f5e6a9b0c\n"}, {"uuid": 5},
                            {"name": None, "uuid": "bad"}, {"name": "i-2\u00003"},
                            {"uuid": "42153c36-3f9e-8c43-1b2a-7d1f5e6a9b0c", "extra": [1]}]):
        add("vm-%02d %r" % (i, vm), W("CreateSnapshot", args__vm=vm))
    # integers
    for i, a in enumerate(["1", "0", "-1", "9223372036854775807", "9223372036854775808", "2.0", "2.5",
                           "1e2", "\"2\"", "true", "null", "-0", "1E0", "-9223372036854775808"]):
        body = W("CreateSnapshot", args__account_id=12345).replace(b"12345", a.encode())
        add("account_id %s" % a, body)
    for i, tmo in enumerate(["null", "1", "604800", "604801", "0", "7200.0", "\"7200\""]):
        add("timeout_s %s" % tmo, W("DeleteSnapshot", timeout_s=12345).replace(b"12345", tmo.encode()))
    add("timeout_s absent", W("DeleteSnapshot"))
    for i, ver in enumerate(["1.0", "-1", "true", "\"1\"", "null", "2", "0", "1e0",
                             "99999999999999999999"]):
        add("version %s" % ver, W("DeleteSnapshot", version=12345).replace(b"12345", ver.encode()))
    add("version absent", W("DeleteSnapshot", version=_ABSENT))
    # id and type
    for i, v in enumerate([ID1.upper(), ID1[:-1], ID1 + "\n", ID1.replace("4", "g", 1), x * 65, None, 5,
                           "", ID1.replace("-", "")]):
        add("id %r" % (v,), W("DeleteSnapshot", id=v))
    for v in ["", None, 5, "deleteSnapshot", "DeleteSnapshot\n", ["DeleteSnapshot"]]:
        add("type %r" % (v,), W("DeleteSnapshot", type=v))
    # vcenter
    vc = {"url": "https://vc1.example.org/sdk", "credentials": "vc1"}
    add("vcenter null, not needed", W("DeleteSnapshot", vcenter=None))
    add("vcenter null, needed", W("CreateSnapshot", vcenter=None))
    add("vcenter absent, needed", W("ExtractVolume", vcenter=_ABSENT))
    add("vcenter {}", W("DeleteSnapshot", vcenter={}))
    add("vcenter {} and no store", W("DeleteSnapshot", vcenter={}, store=_ABSENT))
    for u in ["HTTPS://vc/sdk", "https://:443/sdk", "https://", "https://vc", "https://vc?x",
              "https://vc#@x", "https://u@vc/sdk", "https://vc/a@b", "http://vc", "ftp://vc",
              "https://vc/\u00e9", "https://vc/\t", "https://vc/ x", "hTTp://vc:8/x", "https:/vc",
              "https://vc" + "/x" * 1019, "https://vc" + "/x" * 1020, "https//vc", "1https://vc",
              "https://[::1]:443/sdk", "https://@/", None, 5]:
        add("vcenter.url %r" % (u if u is None or len(str(u)) < 40 else str(u)[:40]),
            W("CreateSnapshot", vcenter=dict(vc, url=u)))
    for cr in ["a.b_c-D9", "", "a b", x * 64, x * 65, "a/b", None, "vc1\n", "\u00e9"]:
        add("vcenter.credentials %r" % (cr,), W("CreateSnapshot", vcenter=dict(vc, credentials=cr)))
    tp = ":".join(["ab"] * 32)
    for th in [tp, tp.upper(), None, tp[:-3], tp.replace(":", "-"), tp + ":ab", "", tp + "\n", 5]:
        add("vcenter.thumbprint %r" % (th if th is None or len(str(th)) < 20 else str(th)[:20] + ".."),
            W("CreateSnapshot", vcenter=dict(vc, thumbprint=th)))
    add("vcenter thumbprint bad and no credentials",
        W("CreateSnapshot", vcenter={"url": "https://vc/sdk", "thumbprint": "x"}))
    add("vcenter no url and no credentials", W("CreateSnapshot", vcenter={"credentials": 5}))
    # store
    for u in ["nfs://h/e", "NFS+x.y-z://h", "1nfs://h", "nfs:/h", "nfs://", "nfs://u:p@h/x",
              "s3://bucket/key?x=@", "nfs://h/" + x * 2040, "nfs://h/" + x * 2041, "", None, "nfs://h/\u00e9",
              "nfs://h /e", "://h"]:
        add("store.url %r" % (u if u is None or len(u) < 40 else u[:40]), W("DeleteSnapshot", store={"url": u}))
    add("store null", W("DeleteSnapshot", store=None))
    add("store []", W("DeleteSnapshot", store=[]))
    add("store {}", W("DeleteSnapshot", store={}))
    # RegisterTemplate
    h64 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
    for ck in ["sha256:" + h64, "md5:" + h64[:32], "MD5:" + h64[:32], h64, h64[:32], h64[:40],
               "sha256:" + h64[:32], "md5:" + h64, None, "", "{SHA-256}" + h64, h64 + "\n", h64[:31] + "g",
               5]:
        add("checksum %r" % (ck if ck is None or len(str(ck)) < 12 else str(ck)[:12] + ".."),
            W("RegisterTemplate", args__checksum=ck))
    for u in ["http://h/x.ova", "https://h:8443/x", "file:///x", "http://@h", "http://h@", None, ""]:
        add("register url %r" % (u,), W("RegisterTemplate", args__url=u))
    add("register no url, bad account", W("RegisterTemplate", args__url=_ABSENT, args__account_id=0))
    add("register bad checksum, bad account", W("RegisterTemplate", args__checksum="x", args__account_id=0))
    # CreateTemplate and unique_name
    for un in [".", "..", "...", "a\\b", x * 255, x * 256, None, "", "a/b", "a\nb", "t.ova"]:
        add("unique_name %r" % (un if un is None or len(un) < 20 else un[:20] + ".."),
            W("CreateTemplate", args__unique_name=un))
    # RegisterTemplate and CopyTemplate take unique_name too (CopyTemplate's must also be
    # the name its path ends in: the harness's cross-member rule).
    for tn in ("RegisterTemplate", "CopyTemplate"):
        for un in ["t", "t-1", "a/b", "..", None, 5, "T1", "x.OVA", "a" * 200, "a" * 201]:
            add("%s unique_name %r" % (tn, un), W(tn, args__unique_name=un))
    vm = {"uuid": "42153c36-3f9e-8c43-1b2a-7d1f5e6a9b0c"}
    disk = "[ds1] i-2-3-VM/ROOT-3.vmdk"
    add("template from vm", W("CreateTemplate", vcenter=vc, args__snapshot_path=None, args__vm=vm,
                              args__disk=disk))
    add("template snapshot_path and vm null", W("CreateTemplate", args__vm=None))
    add("template vm without disk", W("CreateTemplate", vcenter=vc, args__snapshot_path=_ABSENT, args__vm=vm))
    add("template disk only", W("CreateTemplate", vcenter=vc, args__snapshot_path=_ABSENT, args__disk=disk))
    add("template snapshot_path and disk", W("CreateTemplate", args__disk=disk))
    add("template snapshot_path and vm", W("CreateTemplate", args__vm=vm))
    add("template neither", W("CreateTemplate", args__snapshot_path=_ABSENT))
    add("template neither (nulls)", W("CreateTemplate", args__snapshot_path=None, args__vm=None))
    add("template vm+disk without vcenter", W("CreateTemplate", args__snapshot_path=_ABSENT, args__vm=vm,
                                              args__disk=disk))
    add("template vm+disk, vcenter null", W("CreateTemplate", vcenter=None, args__snapshot_path=_ABSENT,
                                            args__vm=vm, args__disk=disk))
    add("template vm+disk, bad disk, no vcenter", W("CreateTemplate", args__snapshot_path=_ABSENT,
                                                     args__vm=vm, args__disk="x"))
    add("template snapshot_path empty", W("CreateTemplate", args__snapshot_path=""))
    add("template both and bad account", W("CreateTemplate", args__vm=vm, args__account_id=0))
    add("template vm null, disk", W("CreateTemplate", vcenter=vc, args__snapshot_path=_ABSENT, args__vm=None,
                                    args__disk=disk))
    add("template vm bad, no vcenter", W("CreateTemplate", args__snapshot_path=_ABSENT, args__vm={},
                                         args__disk=disk))
    # CreateVolume, CopyTemplate
    for ds in ["a b", "a/b", "", x * 255, x * 256, "[a", "a]", "a\\b", None]:
        add("datastore %r" % (ds if ds is None or len(ds) < 20 else ds[:20] + ".."),
            W("CreateVolume", args__datastore=ds))
    for nm in ["x.vmdk", "a/b", "..", x * 256, None]:
        add("volume name %r" % (nm if nm is None or len(nm) < 20 else nm[:20] + ".."),
            W("CreateVolume", args__name=nm))
    add("CreateVolume without vcenter and bad source", W("CreateVolume", vcenter=_ABSENT, args__source_path="/a"))
    add("dest_store {}", W("CopyTemplate", args__dest_store={}))
    add("dest_store null", W("CopyTemplate", args__dest_store=None))
    add("dest_store url bad", W("CopyTemplate", args__dest_store={"url": "h/e"}))
    add("copy path bad, dest_store missing", W("CopyTemplate", args__path="..", args__dest_store=_ABSENT))
    # unknown members are ignored at every level
    add("unknown members", W("CreateSnapshot", extra={"a": [1, {"b": None}]}, args__vm__extra=1,
                             store__extra="x", vcenter__extra=True, args__extra=None))
    add("args null", W("DeleteSnapshot", args=None))
    add("args []", W("DeleteSnapshot", args=[]))
    add("args {}", W("DeleteSnapshot", args={}))
    # several faults: the first the worker checks is named
    add("bad version and id", W("DeleteSnapshot", version=2, id="x"))
    add("bad id and type", W("DeleteSnapshot", id="x", type="X"))
    add("no store, no args", W("DeleteSnapshot", store=_ABSENT, args=_ABSENT))
    add("no vcenter, bad args", W("CreateSnapshot", vcenter=_ABSENT, args__disk="x"))
    add("bad timeout and vcenter", W("DeleteSnapshot", timeout_s=0, vcenter={}))
    add("bad vcenter and store", W("DeleteSnapshot", vcenter={"url": 5}, store={}))
    add("everything missing", b"{}")
    add("every arg bad", W("CreateSnapshot", args={"vm": {}, "disk": 1, "account_id": 0, "volume_id": 0,
                                                 "backup_uuid": "x"}))
    add("backup_uuid null", W("CreateSnapshot", args__backup_uuid=None))
    add("backup_uuid bad", W("CreateSnapshot", args__backup_uuid=ID1 + "0"))
    # the JSON level
    base = W("DeleteSnapshot")
    add("leading and trailing white space", b" \t\r\n" + base + b"\n \t")
    add("BOM", b"\xef\xbb\xbf" + base)
    add("exactly 1 MiB", base + b" " * (BODY_MAX - len(base)))
    add("1 MiB + 1", base + b" " * (BODY_MAX - len(base) + 1))
    add("depth 16", base[:-1] + b',"x":' + b"[" * 14 + b"]" * 14 + b"}")
    add("depth 17", base[:-1] + b',"x":' + b"[" * 15 + b"]" * 15 + b"}")
    add("duplicate in an unknown member", base[:-1] + b',"x":{"a":1,"b":{"c":1,"c":2}}}')
    add("duplicate id after a bad type", base.replace(b'"type": "DeleteSnapshot"', b'"type": 5, "id": "x"'))
    add("duplicate type spelt two ways", base[:-1] + b',"\\u0074ype":"DeleteSnapshot"}')
    add("NaN in an unknown member", base[:-1] + b',"x":NaN}')
    add("-Infinity", base[:-1] + b',"x":-Infinity}')
    add("escaped NUL in an unknown member", base[:-1] + b',"x":"a\\u0000b"}')
    add("raw DEL in a path", W("DeleteSnapshot", args__path="a\x7fb"))
    add("raw NUL", base[:-1] + b',"x":"a\x00b"}')
    add("overlong UTF-8", base[:-1] + b',"x":"\xc0\xaf"}')
    add("UTF-8 surrogate", base[:-1] + b',"x":"\xed\xa0\x80"}')
    add("4-byte UTF-8 in a path", W("DeleteSnapshot", args__path="a/\U0001f600"))
    add("leading zero", base[:-1] + b',"x":01}')
    add("plus sign", base[:-1] + b',"x":+1}')
    add("a bare value", b"5")
    add("a string", b'"x"')
    add("null", b"null")
    add("an array of a command", b"[" + base + b"]")
    add("two objects", base + base)
    add("comment", base[:-1] + b"/* x */}")
    add("huge exponent in an unknown member", base[:-1] + b',"x":1e400}')
    return cs


def c_verdict(snapctl, body):
    """The worker's parser on body, through `snapctl submit --dry-run -`: None (valid) or its message."""
    p = subprocess.run([snapctl, "submit", "--dry-run", "-"], input=body, capture_output=True,
                       timeout=30)
    if p.returncode == 0:
        return None
    if len(body) > BODY_MAX and p.returncode == 2 and b"too large" in p.stderr:
        # snapctl refuses to read more than the parser would take (tests/unit/test_proto.c
        # checks the parser's own "body: larger than 1048576 bytes").
        return "body: larger than %d bytes" % BODY_MAX
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    prefix = "snapctl: invalid command (a worker would refuse it): "
    for line in err:
        if line.startswith(prefix):
            return line[len(prefix):]
    return "?: snapctl exited %d: %s" % (p.returncode, " ".join(err)[:200])


def test_differential(schemas, snapctl, t):
    cases = differential_cases()
    nvalid = 0
    for name, body in cases:
        want = c_verdict(snapctl, body)
        v = judge(schemas, "command.schema.json", body)
        if want is None:
            nvalid += 1
            t.check(v[0] == "valid", "case %s: accepted as by the worker" % name, show(v))
        else:
            t.check(verdict_matches(v, want, body), "case %s: refused at %s as by the worker"
                    % (name, want.partition(": ")[0]), "worker: %s; schema: %s" % (want, show(v)))
    t.check(nvalid >= 40 and len(cases) - nvalid >= 100,
            "differential cases: %d the worker accepts, %d it refuses" % (nvalid, len(cases) - nvalid))


def test_documented_divergences(schemas, snapctl, t):
    """What README.md says the schemas cannot do, checked to be still so (or no longer)."""
    # Lengths: JSON Schema counts characters, the worker UTF-8 bytes.
    body = _with("CreateSnapshot", args__vm={"name": "\u00e9" * 200})
    t.check(judge(schemas, "command.schema.json", body)[0] == "valid" and
            (c_verdict(snapctl, body) or "").startswith("args.vm.name: longer than 255 bytes"),
            "documented: 200 'e-acute' (400 bytes) in vm.name pass the schema, the worker refuses")
    # A plain JSON parser gives 2.0 as a float, which JSON Schema counts as an integer.
    v = schemas.first_error("command.schema.json", json.loads(_with("CreateSnapshot", args__account_id=12345)
                                                              .replace(b"12345", b"2.0")))
    t.check(v is None, "documented: 2.0 passes the schema when loaded without strict_load()")


def run_tests(args):
    sdir, fdir = args[0], args[1]
    snapctl = gen = None
    broken = False
    i = 2
    while i < len(args):
        if args[i] == "--snapctl":
            snapctl = args[i + 1]
            i += 2
        elif args[i] == "--events":
            gen = args[i + 1]
            i += 2
        elif args[i] == "--broken":
            broken = True
            i += 1
        else:
            print("proto_schema.py: unknown argument %s" % args[i], file=sys.stderr)
            return 2
    t = Tally(quiet=broken)
    schemas = Schemas(sdir)
    if not broken:
        test_meta(schemas, t)
        test_cancel(schemas, t)
    test_valid_commands(schemas, fdir, t)
    test_invalid_commands(schemas, fdir, t)
    test_events(schemas, fdir, t, gen)
    if snapctl:
        test_differential(schemas, snapctl, t)
        if not broken:
            test_documented_divergences(schemas, snapctl, t)
    if broken:
        print("broken schemas: %d checks failed, %d passed" % (t.failed, t.passed))
        return 0 if t.failed > 0 else 1
    print("%d passed, %d failed" % (t.passed, t.failed))
    return 0 if t.failed == 0 else 1


def run_validate(args):
    sdir, kind, files = args[0], args[1], args[2:]
    schemas = Schemas(sdir)
    name = {"command": "command.schema.json", "event": "event.schema.json"}[kind]
    rc = 0
    for f in files:
        with open(f, "rb") as fh:
            v = judge(schemas, name, fh.read())
        print("%s: %s" % (f, "valid" if v[0] == "valid" else show(v)))
        rc |= v[0] != "valid"
    return rc


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "test":
        return run_tests(sys.argv[2:])
    if len(sys.argv) >= 5 and sys.argv[1] == "validate" and sys.argv[3] in ("command", "event"):
        return run_validate(sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""An NFC import lease for a baseline upload (bench/bench_volume.sh).

usage: import_lease.py open VCENTER_URL USER PASSWORD_FILE OVF LIKE_VM NAME
       import_lease.py complete|abort VCENTER_URL USER PASSWORD_FILE LEASE

open: CreateImportSpec of OVF (on the datastore, resource pool and folder of
LIKE_VM, found by inventory path DC0/vm/LIKE_VM), ImportVApp, waits until the
lease is ready and prints "LEASE URL" for its first disk, the URL's "*" host
filled in; the lease stays open for `curl -T`.  complete/abort end it.
Talks plain SOAP over TLS without verification: the test rig's simulator on
loopback only.
"""
import http.cookiejar
import re
import ssl
import sys
import time
import urllib.request

ENV = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
       'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
       'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>%s'
       '</soapenv:Body></soapenv:Envelope>')


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Vc:
    def __init__(self, url, user, pwfile):
        if not re.match(r"^https?://(127\.0\.0\.1|\[::1\]|localhost)[:/]", url):
            sys.exit("import_lease.py: loopback vCenter URLs only")
        self.url = url
        ctx = ssl._create_unverified_context()
        self.op = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ctx),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        pw = open(pwfile).readline().rstrip("\n")
        self.call('<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager'
                  '</_this><userName>%s</userName><password>%s</password></Login>'
                  % (esc(user), esc(pw)))

    def call(self, body):
        req = urllib.request.Request(self.url, data=(ENV % body).encode(),
                                     headers={"Content-Type": "text/xml",
                                              "SOAPAction": "urn:vim25/8.0"})
        try:
            return self.op.open(req, timeout=60).read().decode()
        except urllib.error.HTTPError as e:
            sys.exit("import_lease.py: %s" % e.read().decode()[:2000])

    def prop(self, typ, obj, path):
        return self.call('<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">'
                         'propertyCollector</_this><specSet><propSet><type>%s</type><pathSet>%s'
                         '</pathSet></propSet><objectSet><obj type="%s">%s</obj></objectSet>'
                         '</specSet><options/></RetrievePropertiesEx>' % (typ, path, typ, obj))


def moref(xml, typ):
    m = re.search(r'type="%s"[^>]*>([^<]+)<' % typ, xml)
    if not m:
        sys.exit("import_lease.py: no %s in %s" % (typ, xml[:500]))
    return m.group(1)


def main():
    op, url, user, pwfile = sys.argv[1:5]
    vc = Vc(url, user, pwfile)
    if op in ("complete", "abort"):
        method = "HttpNfcLeaseComplete" if op == "complete" else "HttpNfcLeaseAbort"
        vc.call('<%s xmlns="urn:vim25"><_this type="HttpNfcLease">%s</_this></%s>'
                % (method, sys.argv[5], method))
        return
    ovf, like, name = sys.argv[5:8]
    vm = moref(vc.call('<FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">'
                       'SearchIndex</_this><inventoryPath>DC0/vm/%s</inventoryPath>'
                       '</FindByInventoryPath>' % esc(like)), "VirtualMachine")
    pool = moref(vc.prop("VirtualMachine", vm, "resourcePool"), "ResourcePool")
    folder = moref(vc.prop("VirtualMachine", vm, "parent"), "Folder")
    ds = moref(vc.prop("VirtualMachine", vm, "datastore"), "Datastore")
    spec = vc.call('<CreateImportSpec xmlns="urn:vim25"><_this type="OvfManager">OvfManager</_this>'
                   '<ovfDescriptor>%s</ovfDescriptor><resourcePool type="ResourcePool">%s'
                   '</resourcePool><datastore type="Datastore">%s</datastore><cisp><locale>'
                   '</locale><deploymentOption></deploymentOption><entityName>%s</entityName>'
                   '<diskProvisioning>thin</diskProvisioning></cisp></CreateImportSpec>'
                   % (esc(open(ovf).read()), pool, ds, esc(name)))
    m = re.search(r"<importSpec\b(.*?)</importSpec>", spec, re.S)
    if not m:
        sys.exit("import_lease.py: no import spec: %s" % spec[:2000])
    lease = moref(vc.call('<ImportVApp xmlns="urn:vim25"><_this type="ResourcePool">%s</_this>'
                          '<spec%s</spec><folder type="Folder">%s</folder></ImportVApp>'
                          % (pool, m.group(1), folder)), "HttpNfcLease")
    for _ in range(600):
        info = vc.prop("HttpNfcLease", lease, "state")
        if ">ready<" in info:
            break
        if ">error<" in info:
            sys.exit("import_lease.py: lease failed: %s" % info[:1000])
        time.sleep(0.05)
    info = vc.prop("HttpNfcLease", lease, "info")
    u = re.search(r"<url>([^<]+)</url>", info)
    if not u:
        sys.exit("import_lease.py: lease without a URL: %s" % info[:1000])
    host = re.sub(r"^https?://", "", url).split("/")[0]
    print(lease, re.sub(r"://\*", "://" + host, u.group(1)).replace("/sdk/", "/"))


main()

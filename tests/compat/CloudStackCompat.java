/*
 * Reads what snapworker leaves on a secondary store the way Apache
 * CloudStack's Java code reads it, with the JDK's own classes: metas and
 * template.properties through java.util.Properties.load(InputStream)
 * (ISO-8859-1 with backslash-u escapes), OVF descriptors through the JDK's DOM
 * parser, file lookups through java.io.File.  Written for snapworker's
 * compatibility test (tests/integration/test_cloudstack_compat.sh); it
 * contains no CloudStack code, only the rules docs/cloudstack.md describes.
 *
 *   java CloudStackCompat snapshot ROOT INSTALL_PATH
 *   java CloudStackCompat volume   ROOT INSTALL_PATH
 *   java CloudStackCompat template ROOT INSTALL_PATH UNIQUE_NAME [EXTRACT_LIST]
 *   java CloudStackCompat legacy   ROOT INSTALL_PATH
 *   java CloudStackCompat props    FILE          (prints key=value, UTF-8, sorted)
 *
 * INSTALL_PATH is what the event reported.  Each check prints "ok   - ..." or
 * "FAIL - ..."; the exit status is 1 when one failed.  EXTRACT_LIST gets the
 * files CloudStack's template extract would tar, one a line (UTF-8).
 */

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;

import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class CloudStackCompat {
    private static int failed;
    private static String what = "";
    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    private static void check(boolean cond, String desc) {
        OUT.println((cond ? "ok   - " : "FAIL - ") + what + ": " + desc);
        if (!cond) {
            failed++;
        }
    }

    private static Properties load(File f) throws IOException {
        Properties p = new Properties();
        try (InputStream in = new FileInputStream(f)) {
            p.load(in); /* ISO-8859-1, as CloudStack reads these files */
        }
        return p;
    }

    /* What Properties.store(OutputStream) writes: printable ASCII and line ends only. */
    private static boolean storeClean(File f) throws IOException {
        for (byte b : Files.readAllBytes(f.toPath())) {
            if (b != '\n' && (b < 0x20 || b > 0x7e)) {
                return false;
            }
        }
        return true;
    }

    private static long parseLong(String s) {
        try {
            return s == null ? -1 : Long.parseLong(s.trim());
        } catch (NumberFormatException ex) {
            return -1;
        }
    }

    private static Document parseOvf(File f) throws Exception {
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setNamespaceAware(true);
        dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        DocumentBuilder db = dbf.newDocumentBuilder();
        return db.parse(f);
    }

    private static List<String> ovfHrefs(Document d) {
        List<String> l = new ArrayList<>();
        NodeList refs = d.getElementsByTagNameNS("*", "References");
        for (int i = 0; i < refs.getLength(); i++) {
            NodeList files = ((Element) refs.item(i)).getElementsByTagNameNS("*", "File");
            for (int k = 0; k < files.getLength(); k++) {
                Element e = (Element) files.item(k);
                String h = attr(e, "href");
                if (h != null) {
                    l.add(h);
                }
            }
        }
        return l;
    }

    private static String attr(Element e, String local) {
        for (int i = 0; i < e.getAttributes().getLength(); i++) {
            org.w3c.dom.Node a = e.getAttributes().item(i);
            String n = a.getLocalName() != null ? a.getLocalName() : a.getNodeName();
            if (n.equals(local)) {
                return a.getNodeValue();
            }
        }
        return null;
    }

    /* "byte * 2^30", "byte * 10^9", "byte * 1024", "byte", absent: the multiplier. */
    private static final Pattern POW = Pattern.compile("byte\\s*\\*\\s*(\\d+)\\s*\\^\\s*(\\d+)");
    private static final Pattern MUL = Pattern.compile("byte\\s*\\*\\s*(\\d+)");

    private static BigInteger units(String u) {
        if (u == null || u.trim().isEmpty() || u.trim().equals("byte")) {
            return BigInteger.ONE;
        }
        Matcher m = POW.matcher(u.trim());
        if (m.matches()) {
            return new BigInteger(m.group(1)).pow(Integer.parseInt(m.group(2)));
        }
        m = MUL.matcher(u.trim());
        if (m.matches()) {
            return new BigInteger(m.group(1));
        }
        throw new IllegalArgumentException("unknown allocation units " + u);
    }

    /* The sum of the disks' ovf:capacity x ovf:capacityAllocationUnits. */
    private static BigInteger ovfVirtualSize(Document d) {
        BigInteger sum = BigInteger.ZERO;
        NodeList disks = d.getElementsByTagNameNS("*", "Disk");
        for (int i = 0; i < disks.getLength(); i++) {
            Element e = (Element) disks.item(i);
            sum = sum.add(new BigInteger(attr(e, "capacity").trim()).multiply(
                    units(attr(e, "capacityAllocationUnits"))));
        }
        return sum;
    }

    /* The shell glob *NAME* over the directory (no leading-dot files, as a glob). */
    private static TreeSet<String> glob(File dir, String name) {
        TreeSet<String> s = new TreeSet<>();
        String[] l = dir.list();
        for (String f : l != null ? l : new String[0]) {
            if (!f.startsWith(".") && f.contains(name)) {
                s.add(f);
            }
        }
        return s;
    }

    private static String[] split(String install) {
        int slash = install.lastIndexOf('/');
        return new String[] { install.substring(0, slash), install.substring(slash + 1) };
    }

    /*
     * A new-format object DIR/NAME: its meta read with Properties, every file
     * it names present, the OVF's references the meta's disks.  Returns the
     * meta's disk names (null when the meta is unusable).
     */
    private static List<String> newFormat(File dir, String name) throws Exception {
        File meta = new File(dir, name + ".ova.meta");
        check(meta.isFile(), "meta " + meta.getName() + " exists");
        if (!meta.isFile()) {
            return null;
        }
        check(storeClean(meta), "meta is what Properties.store writes (printable ASCII, \\uXXXX escapes)");
        Properties p = load(meta);
        check("1.0".equals(p.getProperty("version")) || "1".equals(p.getProperty("version")),
                "meta version is 1.0");
        check((name + ".ova").equals(p.getProperty("ova.filename")), "meta ova.filename is NAME.ova");
        String ovf = p.getProperty("ovf");
        check(ovf != null && new File(dir, ovf).isFile(), "meta ovf names an existing file (" + ovf + ")");
        int n;
        try {
            n = Integer.parseInt(p.getProperty("numDisks"));
        } catch (NumberFormatException ex) {
            n = -1;
        }
        check(n >= 1, "meta numDisks parses as an int >= 1 (Integer.parseInt)");
        List<String> disks = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            String dn = p.getProperty("disk" + i + ".name");
            File df = dn != null ? new File(dir, dn) : null;
            check(df != null && df.isFile(), "meta disk" + i + ".name names an existing file (" + dn + ")");
            long sz = parseLong(p.getProperty("disk" + i + ".size"));
            check(df != null && sz == df.length(), "meta disk" + i + ".size is the file's size");
            disks.add(dn);
        }
        if (ovf != null && new File(dir, ovf).isFile()) {
            Document d = parseOvf(new File(dir, ovf));
            List<String> hrefs = ovfHrefs(d);
            check(new TreeSet<>(hrefs).equals(new TreeSet<>(disks)),
                    "the OVF references exactly the meta's disks " + hrefs);
            for (String h : hrefs) {
                check(new File(dir, h).isFile(), "OVF href " + h + " found next to the OVF");
            }
        }
        return disks;
    }

    /* Snapshots and volumes: CloudStack looks for NAME.ovf and deletes *NAME*. */
    private static void snapshotLike(File dir, String name, boolean snapshot) throws Exception {
        List<String> disks = newFormat(dir, name);
        if (disks == null) {
            return;
        }
        check(name.equals(name.toLowerCase()), "the name is in lower case");
        check(new File(dir, name + ".ovf").isFile(), "the OVF is found as NAME.ovf (restore)");
        check(!new File(dir, name + ".ova").exists(), "no NAME.ova that would be taken for a legacy object");
        TreeSet<String> want = new TreeSet<>(disks);
        want.add(name + ".ovf");
        want.add(name + ".ova.meta");
        TreeSet<String> g = glob(dir, name);
        check(g.containsAll(want), "the delete glob *NAME* covers every file of the object " + g);
        if (snapshot) {
            /* Template from snapshot: NAME.ovf, then the first file lower-cased startsWith(NAME) and .vmdk. */
            String first = null;
            String[] l = dir.list();
            Arrays.sort(l);
            for (String f : l) {
                String lc = f.toLowerCase();
                if (lc.startsWith(name.toLowerCase()) && lc.endsWith(".vmdk")) {
                    first = f;
                    break;
                }
            }
            check(first != null && disks.contains(first),
                    "template from snapshot finds a disk of the object by startsWith(NAME) (" + first + ")");
        }
    }

    private static void template(File root, String install, String unique, String listOut) throws Exception {
        check(install.endsWith(".ova"), "install path ends in .ova (CloudStack's form)");
        if (!install.endsWith(".ova")) {
            return;
        }
        String[] dn = split(install);
        File dir = new File(root, dn[0]);
        String name = dn[1].substring(0, dn[1].length() - 4);
        File ins = new File(root, install);
        /* Extract: <install> exists -> legacy; else <install>.meta -> new format. */
        check(!ins.exists(), "no file at the install path: CloudStack's extract takes the new format");
        File tp = new File(dir, "template.properties");
        check(tp.isFile(), "template.properties exists");
        if (!tp.isFile()) {
            return;
        }
        check(storeClean(tp), "template.properties is what Properties.store writes");
        Properties p = load(tp);
        check(p.getProperty("ova") != null, "TemplateLocation: the format key ova= is present");
        check((name + ".ova").equals(p.getProperty("ova.filename")), "TemplateLocation: ova.filename is NAME.ova");
        check(parseLong(p.getProperty("ova.size")) > 0, "TemplateLocation: ova.size > 0");
        check(parseLong(p.getProperty("ova.virtualsize")) > 0, "TemplateLocation: ova.virtualsize > 0");
        check(parseLong(p.getProperty("size")) > 0, "size > 0");
        check(parseLong(p.getProperty("id")) > 0, "id parses as a number");
        check(unique.equals(p.getProperty("uniquename")), "uniquename is CloudStack's unique name (" + unique + ")");
        boolean fl = false;
        for (String line : Files.readAllLines(tp.toPath(), StandardCharsets.ISO_8859_1)) {
            fl |= line.startsWith("filename=");
        }
        check(fl, "listvmtmplt.sh finds a line starting filename=");
        /* Import: the first *.ovf of the directory. */
        String[] l = dir.list();
        List<String> ovfs = new ArrayList<>();
        for (String f : l) {
            if (f.endsWith(".ovf")) {
                ovfs.add(f);
            }
        }
        check(ovfs.size() == 1, "exactly one *.ovf in the directory, so the first is the template's " + ovfs);
        if (ovfs.isEmpty()) {
            return;
        }
        Document d = parseOvf(new File(dir, ovfs.get(0)));
        for (String h : ovfHrefs(d)) {
            check(new File(dir, h).isFile(), "import finds OVF href " + h + " next to the OVF");
        }
        BigInteger vs = ovfVirtualSize(d);
        check(vs.equals(BigInteger.valueOf(parseLong(p.getProperty("virtualsize")))),
                "virtualsize " + p.getProperty("virtualsize") + " is the OVF's sum of capacities " + vs);
        check(vs.equals(BigInteger.valueOf(parseLong(p.getProperty("ova.virtualsize")))),
                "ova.virtualsize is the OVF's sum of capacities");
        List<String> disks = newFormat(dir, name);
        if (disks == null) {
            return;
        }
        check(ovfs.get(0).equals(load(new File(dir, name + ".ova.meta")).getProperty("ovf")),
                "the first *.ovf is the meta's ovf");
        /* DeleteTemplate: every file of the directory. */
        Properties m = load(new File(dir, name + ".ova.meta"));
        List<String> tar = new ArrayList<>();
        tar.add(m.getProperty("ovf"));
        tar.addAll(disks);
        if (disks.size() > 1) {
            /* CloudStack's own reader takes disk1.name for every disk (docs/cloudstack.md). */
            List<String> theirs = new ArrayList<>();
            theirs.add(m.getProperty("ovf"));
            for (int i = 0; i < disks.size(); i++) {
                theirs.add(m.getProperty("disk1.name"));
            }
            check(!theirs.equals(tar), "multi-disk: CloudStack's own extract would lose disks"
                    + " (known CloudStack limitation; ExtractTemplate must be used)");
        }
        if (listOut != null) {
            StringBuilder sb = new StringBuilder();
            for (String f : tar) {
                sb.append(f).append('\n');
            }
            Files.write(new File(listOut).toPath(), sb.toString().getBytes(StandardCharsets.UTF_8));
        }
    }

    /* The member names of an uncompressed ustar/pax/GNU tar (enough for a check). */
    private static List<String> tarNames(File f) throws IOException {
        List<String> l = new ArrayList<>();
        byte[] all = Files.readAllBytes(f.toPath());
        int off = 0;
        String longName = null;
        while (off + 512 <= all.length) {
            boolean zero = true;
            for (int i = 0; i < 512 && zero; i++) {
                zero = all[off + i] == 0;
            }
            if (zero) {
                break;
            }
            String n = cstr(all, off, 100);
            String prefix = cstr(all, off + 345, 155);
            long size = Long.parseLong(cstr(all, off + 124, 12).trim(), 8);
            byte type = all[off + 156];
            int data = off + 512;
            if (type == 'L') {
                longName = cstr(all, data, (int) size);
            } else if (type == 'x') {
                String pax = new String(all, data, (int) size, StandardCharsets.UTF_8);
                Matcher m = Pattern.compile("\\d+ path=([^\n]*)\n").matcher(pax);
                if (m.find()) {
                    longName = m.group(1);
                }
            } else if (type != 'g') {
                l.add(longName != null ? longName : prefix.isEmpty() ? n : prefix + "/" + n);
                longName = null;
            }
            off = data + (int) ((size + 511) / 512 * 512);
        }
        return l;
    }

    private static String cstr(byte[] b, int off, int max) {
        int n = 0;
        while (n < max && b[off + n] != 0) {
            n++;
        }
        return new String(b, off, n, StandardCharsets.UTF_8);
    }

    /* A legacy object: NAME.ova, a tar whose first member is the OVF. */
    private static void legacy(File root, String install) throws Exception {
        String p = install.endsWith(".ova") ? install : install + ".ova";
        String[] dn = split(p);
        File ova = new File(root, p);
        check(ova.isFile(), "NAME.ova exists (CloudStack untars it)");
        if (!ova.isFile()) {
            return;
        }
        String name = dn[1].substring(0, dn[1].length() - 4);
        check(!new File(new File(root, dn[0]), name + ".ova.meta").exists(), "no meta beside it");
        List<String> names = tarNames(ova);
        check(!names.isEmpty() && names.get(0).endsWith(".ovf"), "the first member is the OVF " + names);
        check(glob(new File(root, dn[0]), name).contains(name + ".ova"), "the delete glob *NAME* covers NAME.ova");
    }

    public static void main(String[] a) throws Exception {
        if (a.length == 2 && a[0].equals("props")) {
            Properties p = load(new File(a[1]));
            for (String k : new TreeSet<>(p.stringPropertyNames())) {
                OUT.println(k + "=" + p.getProperty(k));
            }
            return;
        }
        if (a.length < 3) {
            System.err.println("usage: CloudStackCompat snapshot|volume|template|legacy ROOT INSTALL_PATH [UNIQUE [LIST]]");
            System.exit(2);
        }
        File root = new File(a[1]);
        what = a[0] + " " + a[2];
        switch (a[0]) {
        case "snapshot":
        case "volume": {
            check(!a[2].endsWith(".ova"), "install path has no .ova suffix");
            String[] dn = split(a[2]);
            snapshotLike(new File(root, dn[0]), dn[1], a[0].equals("snapshot"));
            break;
        }
        case "template":
            template(root, a[2], a.length > 3 ? a[3] : "", a.length > 4 ? a[4] : null);
            break;
        case "legacy":
            legacy(root, a[2]);
            break;
        default:
            System.err.println("unknown kind " + a[0]);
            System.exit(2);
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}

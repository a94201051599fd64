// Command snapworker-vcsim is the vCenter of snapworker's test rig: govmomi's
// simulator (Debian's golang-github-vmware-govmomi-dev 0.24.2, VPX model)
// plus the few things snapworker needs that 0.24.2 lacks: ExportVm with real
// disk bytes, OvfManager.CreateDescriptor, ImportVApp uploads that persist,
// delta disks on snapshots, seeded disks, slow tasks, login restriction and
// test-only control endpoints under /rig/. See tests/rig/README.md.
//
// Debian's source is never modified: the extensions use the three hooks the
// simulator offers (replace a registry object, register new managed objects,
// put an http.Handler in front of the simulator's ServeMux).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

type options struct {
	listen       string
	plainHTTP    bool
	dir          string
	envFile      string
	user         string
	passwordFile string
	seedMiB      int
	vmDisks      int
	taskDelay    time.Duration
	nfcRate      int64
	leaseTimeout time.Duration
	certHosts    string
	trace        bool
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("vcsim: ")

	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "listen address; port 0 picks a free port")
	flag.BoolVar(&o.plainHTTP, "http", false, "serve plain HTTP instead of HTTPS")
	flag.StringVar(&o.dir, "dir", "", "state directory (datastore, certificate); default: a temporary directory removed at exit")
	flag.StringVar(&o.envFile, "env", "", "also write the VCSIM_* lines to this file (shell-sourceable)")
	flag.StringVar(&o.user, "user", "", "only this user may log in (requires -password-file)")
	flag.StringVar(&o.passwordFile, "password-file", "", "file holding the only accepted password (first line)")
	flag.IntVar(&o.seedMiB, "seed-mib", 0, "write this many MiB of deterministic pseudo-random data into each disk of "+seedVM)
	flag.IntVar(&o.vmDisks, "vm-disks", 1, "number of disks of "+seedVM)
	flag.DurationVar(&o.taskDelay, "task-delay", 0, "tasks stay queued, then running, this long before they finish")
	flag.DurationVar(&o.leaseTimeout, "lease-timeout", 0, "NFC leases without HttpNfcLeaseProgress for this long fail (0: never, unlike vCenter)")
	flag.Int64Var(&o.nfcRate, "nfc-rate", 0, "serve every NFC download at most this many bytes per second (0: unthrottled)")
	flag.StringVar(&o.certHosts, "cert-host", "", "comma-separated extra names or IPs in the certificate (e.g. a compose service name)")
	flag.BoolVar(&o.trace, "trace", false, "log SOAP traffic to stderr")
	flag.Parse()

	if err := run(&o); err != nil {
		log.Fatal(err)
	}
}

func run(o *options) error {
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if o.vmDisks < 1 || o.seedMiB < 0 {
		return errors.New("-vm-disks must be >= 1 and -seed-mib >= 0")
	}
	login, err := loginUser(o.user, o.passwordFile)
	if err != nil {
		return err
	}

	dir, cleanup, err := stateDir(o.dir)
	if err != nil {
		return err
	}
	defer cleanup()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	scheme := "https"
	if o.plainHTTP {
		scheme = "http"
	}

	// model.Create puts each datastore in ioutil.TempDir("", ...): pointing
	// TMPDIR at the state directory is the only way to choose where it goes.
	oldTmp, hadTmp := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	model := simulator.VPX()
	err = model.Create()
	if hadTmp {
		os.Setenv("TMPDIR", oldTmp)
	} else {
		os.Unsetenv("TMPDIR")
	}
	if err != nil {
		return fmt.Errorf("creating the simulator model: %w", err)
	}
	simulator.Trace = o.trace

	// What Service.NewServer would do, minus its listener: we need our own
	// handler in front of the simulator's ServeMux, and our own certificate.
	svc := model.Service
	svc.Listen = &url.URL{Scheme: scheme, Host: ln.Addr().String(), Path: "/sdk", User: login}
	svc.RegisterSDK(simulator.Map)
	svc.ServeMux.HandleFunc("/sdk/vimServiceVersions.xml", svc.ServiceVersions)
	svc.ServeMux.HandleFunc("/folder/", svc.ServeDatastore)
	svc.ServeMux.HandleFunc("/about", svc.About)
	simulator.Map.SessionManager().ServiceHostName = ln.Addr().String()

	ctx := context.Background()
	vim, err := vim25.NewClient(ctx, svc) // in-process, privileged client
	if err != nil {
		return err
	}
	rg := newRig(vim, scheme, o.taskDelay, o.leaseTimeout)
	rg.nfcRate = o.nfcRate
	if rg.dsDir, err = rg.datastoreDir(datastoreName); err != nil {
		return err
	}
	rg.installOvfManager()
	seeds, err := rg.seed(seedVM, o.seedMiB, o.vmDisks)
	if err != nil {
		return fmt.Errorf("seeding %s: %w", seedVM, err)
	}
	go rg.expireLeases()

	srv := &http.Server{
		Handler:  &front{rig: rg, mux: svc.ServeMux},
		ErrorLog: log.Default(),
		// HTTP/1.1 only, like vCenter; it also keeps the NFC cut injection simple.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	var env []string
	add := func(k, v string) { env = append(env, k+"="+v) }
	add("VCSIM_URL", (&url.URL{Scheme: scheme, Host: ln.Addr().String(), Path: "/sdk"}).String())
	serveErr := make(chan error, 1)
	if o.plainHTTP {
		go func() { serveErr <- srv.Serve(ln) }()
	} else {
		cert, der, err := selfSigned(o.certHosts)
		if err != nil {
			return err
		}
		certFile := filepath.Join(dir, "vcsim-cert.pem")
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644); err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s256, s1 := sha256.Sum256(der), sha1.Sum(der)
		add("VCSIM_THUMBPRINT", thumbprint(s256[:]))
		add("VCSIM_THUMBPRINT_SHA1", thumbprint(s1[:]))
		rg.nfcThumb = thumbprint(s1[:])
		add("VCSIM_CACERT", certFile)
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	}
	vmUUID, _ := rg.vmUUID(seedVM)
	add("VCSIM_DATASTORE_DIR", rg.dsDir)
	add("VCSIM_DATACENTER", "DC0")
	add("VCSIM_DATASTORE", datastoreName)
	add("VCSIM_VM", seedVM)
	add("VCSIM_VM_UUID", vmUUID)
	if login != nil {
		add("VCSIM_USER", o.user)
	}
	for i, sum := range seeds {
		add(fmt.Sprintf("VCSIM_SEED_SHA256_%d", i), sum)
	}
	if o.seedMiB > 0 {
		add("VCSIM_SEED_BYTES", fmt.Sprint(int64(o.seedMiB)<<20))
	}
	add("VCSIM_PID", fmt.Sprint(os.Getpid()))
	out := strings.Join(env, "\n") + "\n"
	if o.envFile != "" {
		// Written whole then renamed: a script waiting for the file never reads half of it.
		tmp := o.envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(out), 0644); err != nil {
			return err
		}
		if err := os.Rename(tmp, o.envFile); err != nil {
			return err
		}
	}
	os.Stdout.WriteString(out)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Printf("%s: shutting down", s)
	case err := <-serveErr:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // stops idle connections; long downloads get 5 s
	return nil
}

// loginUser returns the only credentials accepted by Login, or nil for the
// simulator's default (any non-empty user and password).
func loginUser(user, passwordFile string) (*url.Userinfo, error) {
	if user == "" && passwordFile == "" {
		return nil, nil
	}
	if user == "" || passwordFile == "" {
		return nil, errors.New("-user and -password-file go together")
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return nil, err
	}
	pass := strings.SplitN(string(b), "\n", 2)[0]
	pass = strings.TrimSuffix(pass, "\r")
	if pass == "" {
		return nil, fmt.Errorf("%s: empty password", passwordFile)
	}
	return url.UserPassword(user, pass), nil
}

// stateDir returns the state directory and a cleanup function that removes it
// only when it is a temporary one: with -dir the state stays for inspection.
func stateDir(dir string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "snapworker-vcsim-")
		return d, func() { os.RemoveAll(d) }, err
	}
	if err := os.MkdirAll(dir, 0700); err != nil {
		return "", nil, err
	}
	abs, err := filepath.Abs(dir)
	return abs, func() {}, err
}

// selfSigned makes a fresh certificate for 127.0.0.1, ::1, localhost and the
// extra hosts. It is its own CA (clients can pin it by thumbprint or trust it
// as cacert).
func selfSigned(extra string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "127.0.0.1", Organization: []string{"snapworker test rig"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	for _, h := range strings.Split(extra, ",") {
		if ip := net.ParseIP(strings.TrimSpace(h)); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h = strings.TrimSpace(h); h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

// thumbprint formats a digest as vSphere does: upper-case hex pairs and colons.
func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

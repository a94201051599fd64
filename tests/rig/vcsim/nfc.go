package main

// NFC leases for ExportVm and ImportVApp, and the /nfc/ transfers. The
// simulator 0.24.2 has no ExportVm and throws import uploads away; the rig
// serves the real bytes of the disk files and writes uploads into them.

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// HttpNfcLease is registered in simulator.Map so that the simulator's
// property collector and method dispatch serve it. Its Go type name becomes
// its vSphere type name; the mo type must be the first field.
type HttpNfcLease struct {
	mo.HttpNfcLease

	rig      *rig
	export   bool
	files    map[string]*nfcFile // by the file name at the end of the URL
	progress time.Time           // last HttpNfcLeaseProgress, for -lease-timeout
}

type nfcFile struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Path  string `json:"path"` // absolute path of the disk file served or written
	Size  int64  `json:"size"`
	Bytes int64  `json:"bytes_transferred"`
	key   string
}

// leaseFile names one device of a lease.
type leaseFile struct {
	device types.BaseVirtualDevice
	name   string // URL file name and targetId
	path   string // absolute path
	key    string
	imp    string
}

// deviceKeys gives the HttpNfcLeaseDeviceUrl key and importKey of a device,
// in the simulator's ImportVApp format ("/<vm id>/<type>:<n>", n counting
// devices of that type): CreateImportSpec's fileItem deviceIds match them,
// and CreateDescriptor matches ovfFiles[].deviceId against the same keys.
func deviceKeys(vm *simulator.VirtualMachine, devices object.VirtualDeviceList, n map[string]int, d types.BaseVirtualDevice) (string, string) {
	kind := devices.Type(d)
	i := n[kind]
	n[kind]++
	return fmt.Sprintf("/%s/%s:%d", vm.Self.Value, kind, i), fmt.Sprintf("/%s/%s:%d", vm.Name, kind, i)
}

// exportVM is VirtualMachine.ExportVm: a ready lease serving each disk.
func (rg *rig) exportVM(ref types.ManagedObjectReference) (types.ManagedObjectReference, types.BaseMethodFault) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return ref, &types.ManagedObjectNotFound{Obj: ref}
	}
	var files []leaseFile
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			// A real vCenter refuses to export a running VM; that is why
			// snapworker exports a powered-off worker VM on the snapshot's chain.
			fault = &types.InvalidPowerState{
				InvalidState:   types.InvalidState{},
				RequestedState: types.VirtualMachinePowerStatePoweredOff,
				ExistingState:  vm.Runtime.PowerState,
			}
			return
		}
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		n := map[string]int{}
		for i, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
			b, ok := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				fault = &types.NotSupported{}
				return
			}
			// The exported image is the whole chain flattened. Rig deltas hold
			// no data, so that is the bytes of the chain's base file.
			for b.Parent != nil {
				b = b.Parent
			}
			p, err := rg.resolve(b.FileName)
			if err != nil {
				fault = &types.FileNotFound{FileFault: types.FileFault{File: b.FileName}}
				return
			}
			key, imp := deviceKeys(vm, devices, n, d)
			files = append(files, leaseFile{device: d, name: fmt.Sprintf("disk-%d.vmdk", i), path: p, key: key, imp: imp})
		}
	})
	if fault != nil {
		return types.ManagedObjectReference{}, fault
	}
	return rg.newLease(vm, true, files), nil
}

// importVApp is ResourcePool.ImportVApp for a VirtualMachineImportSpec, as the
// simulator does it (create the VM, lease its file-backed devices), but with
// a lease whose uploads land in the VM's files.
func (rg *rig) importVApp(req *types.ImportVApp) (types.ManagedObjectReference, types.BaseMethodFault) {
	var none types.ManagedObjectReference
	spec, ok := req.Spec.(*types.VirtualMachineImportSpec)
	if !ok {
		return none, &types.InvalidArgument{InvalidProperty: "spec"}
	}
	folder := req.Folder
	if folder == nil {
		dc := rg.datacenterOf(req.This)
		if dc == nil {
			return none, &types.ManagedObjectNotFound{Obj: req.This}
		}
		folder = &dc.VmFolder
	}
	res, err := methods.CreateVM_Task(context.Background(), rg.vim, &types.CreateVM_Task{
		This: *folder, Config: spec.ConfigSpec, Pool: req.This, Host: req.Host,
	})
	if err != nil {
		return none, soapFaultOf(err)
	}
	t := simulator.Map.Get(res.Returnval).(*simulator.Task)
	if t.Info.Error != nil {
		return none, t.Info.Error.Fault
	}
	rg.chainMu.Lock()
	rg.fixParents()
	rg.chainMu.Unlock()
	vm := simulator.Map.Get(t.Info.Result.(types.ManagedObjectReference)).(*simulator.VirtualMachine)
	var files []leaseFile
	simulator.Map.WithLock(vm, func() {
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		n := map[string]int{}
		for _, d := range devices {
			b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			name := b.GetVirtualDeviceFileBackingInfo().FileName
			p, err := rg.resolve(name)
			if err != nil {
				continue
			}
			key, imp := deviceKeys(vm, devices, n, d)
			files = append(files, leaseFile{device: d, name: path.Base(p), path: p, key: key, imp: imp})
		}
	})
	return rg.newLease(vm, false, files), nil
}

func soapFaultOf(err error) types.BaseMethodFault {
	if soap.IsSoapFault(err) {
		if f := asMethodFault(soap.ToSoapFault(err).VimFault()); f != nil {
			return f
		}
	}
	return &types.SystemError{Reason: err.Error()}
}

// datacenterOf walks up the inventory from an entity to its datacenter.
func (rg *rig) datacenterOf(ref types.ManagedObjectReference) *simulator.Datacenter {
	for {
		obj := simulator.Map.Get(ref)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			return dc
		}
		e, ok := obj.(mo.Entity)
		if !ok || e.Entity().Parent == nil {
			return nil
		}
		ref = *e.Entity().Parent
	}
}

func (rg *rig) newLease(vm *simulator.VirtualMachine, export bool, files []leaseFile) types.ManagedObjectReference {
	l := &HttpNfcLease{rig: rg, export: export, files: map[string]*nfcFile{}, progress: time.Now()}
	l.State = types.HttpNfcLeaseStateReady
	l.Mode = "push"
	l.Info = &types.HttpNfcLeaseInfo{Entity: vm.Self, LeaseTimeout: 300}
	simulator.Map.Put(l) // sets l.Self
	l.Info.Lease = l.Self
	for _, f := range files {
		var size int64
		if fi, err := os.Stat(f.path); err == nil {
			size = fi.Size()
		}
		_, isDisk := f.device.(*types.VirtualDisk)
		if isDisk {
			l.Info.TotalDiskCapacityInKB += diskCapacity(f.device.(*types.VirtualDisk)) / 1024
		}
		// The host is "*", as vCenter writes it: clients put the vCenter host in.
		u := (&url.URL{Scheme: rg.scheme, Host: "*", Path: "/nfc/" + l.Self.Value + "/" + f.name}).String()
		// sslThumbprint is that of the host serving the disk (on vSphere, an
		// ESXi host, SHA-1): here the simulator's own certificate.
		du := types.HttpNfcLeaseDeviceUrl{
			Key: f.key, ImportKey: f.imp, Url: u, Disk: types.NewBool(isDisk), TargetId: f.name,
			SslThumbprint: rg.nfcThumb,
		}
		if export {
			du.FileSize = size
		}
		l.Info.DeviceUrl = append(l.Info.DeviceUrl, du)
		l.files[f.name] = &nfcFile{Name: f.name, URL: u, Path: f.path, Size: size, key: f.key}
	}
	rg.mu.Lock()
	rg.leases[l.Self.Value] = l
	rg.mu.Unlock()
	log.Printf("lease %s: %s of %s (%d files)", l.Self.Value, map[bool]string{true: "export", false: "import"}[export], vm.Name, len(files))
	return l.Self
}

// leaseOn gives the open (ready) lease covering entity, or "".
func (rg *rig) leaseOn(entity types.ManagedObjectReference) string {
	rg.mu.Lock()
	var open []*HttpNfcLease
	for _, l := range rg.leases {
		open = append(open, l)
	}
	rg.mu.Unlock()
	for _, l := range open {
		var id string
		simulator.Map.WithLock(l, func() {
			if l.State == types.HttpNfcLeaseStateReady && l.Info != nil && l.Info.Entity == entity {
				id = l.Self.Value
			}
		})
		if id != "" {
			return id
		}
	}
	return ""
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes != 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

func (l *HttpNfcLease) notReady() *soap.Fault {
	if l.State == types.HttpNfcLeaseStateReady {
		return nil
	}
	return simulator.Fault(fmt.Sprintf("lease is %s", l.State), &types.InvalidState{})
}

func (l *HttpNfcLease) HttpNfcLeaseProgress(req *types.HttpNfcLeaseProgress) soap.HasFault {
	if f := l.notReady(); f != nil {
		return &methods.HttpNfcLeaseProgressBody{Fault_: f}
	}
	l.progress = time.Now()
	simulator.Map.Update(l, []types.PropertyChange{{Name: "transferProgress", Val: req.Percent}})
	return &methods.HttpNfcLeaseProgressBody{Res: new(types.HttpNfcLeaseProgressResponse)}
}

func (l *HttpNfcLease) HttpNfcLeaseComplete(req *types.HttpNfcLeaseComplete) soap.HasFault {
	if f := l.notReady(); f != nil {
		return &methods.HttpNfcLeaseCompleteBody{Fault_: f}
	}
	l.end(types.HttpNfcLeaseStateDone, nil)
	return &methods.HttpNfcLeaseCompleteBody{Res: new(types.HttpNfcLeaseCompleteResponse)}
}

func (l *HttpNfcLease) HttpNfcLeaseAbort(req *types.HttpNfcLeaseAbort) soap.HasFault {
	if f := l.notReady(); f != nil {
		return &methods.HttpNfcLeaseAbortBody{Fault_: f}
	}
	fault := req.Fault
	if fault == nil {
		fault = &types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "Operation was canceled"}
	}
	l.end(types.HttpNfcLeaseStateError, fault)
	return &methods.HttpNfcLeaseAbortBody{Res: new(types.HttpNfcLeaseAbortResponse)}
}

// HttpNfcLeaseGetManifest lists the SHA-1 of each file as served.
func (l *HttpNfcLease) HttpNfcLeaseGetManifest(req *types.HttpNfcLeaseGetManifest) soap.HasFault {
	if f := l.notReady(); f != nil {
		return &methods.HttpNfcLeaseGetManifestBody{Fault_: f}
	}
	res := new(types.HttpNfcLeaseGetManifestResponse)
	for _, du := range l.Info.DeviceUrl {
		f := l.files[du.TargetId]
		h := sha1.New()
		if fd, err := os.Open(f.Path); err == nil {
			_, _ = io.Copy(h, io.NewSectionReader(fd, 0, f.Size))
			fd.Close()
		}
		res.Returnval = append(res.Returnval, types.HttpNfcLeaseManifestEntry{
			Key: du.Key, Sha1: fmt.Sprintf("%x", h.Sum(nil)), Size: f.Size, Disk: du.Disk != nil && *du.Disk,
		})
	}
	return &methods.HttpNfcLeaseGetManifestBody{Res: res}
}

// end closes the lease: its URLs answer 404 from now on. An import that does
// not complete is undone, as vCenter removes the VM it was importing.
// Called with the lease locked.
func (l *HttpNfcLease) end(state types.HttpNfcLeaseState, fault *types.LocalizedMethodFault) {
	l.rig.mu.Lock()
	delete(l.rig.leases, l.Self.Value)
	l.rig.mu.Unlock()
	changes := []types.PropertyChange{{Name: "state", Val: state}}
	if fault != nil {
		changes = append(changes, types.PropertyChange{Name: "error", Val: *fault})
	}
	simulator.Map.Update(l, changes)
	log.Printf("lease %s: %s", l.Self.Value, state)
	if state == types.HttpNfcLeaseStateError && !l.export {
		_, err := methods.Destroy_Task(context.Background(), l.rig.vim, &types.Destroy_Task{This: l.Info.Entity})
		if err != nil {
			log.Printf("lease %s: destroying %s: %v", l.Self.Value, l.Info.Entity.Value, err)
		}
	}
}

// expireLeases fails leases that got no HttpNfcLeaseProgress within
// -lease-timeout, as vCenter does with its lease timeout.
func (rg *rig) expireLeases() {
	if rg.leaseTimeout <= 0 {
		return
	}
	for range time.Tick(time.Second) {
		rg.mu.Lock()
		var open []*HttpNfcLease
		for _, l := range rg.leases {
			open = append(open, l)
		}
		rg.mu.Unlock()
		for _, l := range open {
			simulator.Map.WithLock(l, func() {
				if l.State == types.HttpNfcLeaseStateReady && time.Since(l.progress) > rg.leaseTimeout {
					l.end(types.HttpNfcLeaseStateError, &types.LocalizedMethodFault{
						Fault: &types.Timedout{}, LocalizedMessage: "lease timed out"})
				}
			})
		}
	}
}

// serveNFC serves /nfc/<lease>/<file>: GET/HEAD (with Range) on export
// leases, PUT/POST on import leases. Like vCenter, no session is needed: the
// lease id in the URL is the credential.
func (rg *rig) serveNFC(w http.ResponseWriter, r *http.Request) {
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/nfc/"), "/")
	var lease *HttpNfcLease
	var file *nfcFile
	if len(p) == 2 {
		rg.mu.Lock()
		if lease = rg.leases[p[0]]; lease != nil {
			file = lease.files[p[1]]
		}
		rg.mu.Unlock()
	}
	if file == nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case lease.export && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		fd, err := os.Open(file.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer fd.Close()
		cw := &countingWriter{ResponseWriter: w, n: &file.Bytes, cut: -1}
		if r.Method == http.MethodGet {
			cw.cut = rg.takeNFCCut()
			cw.rate = rg.takeNFCRate()
			cw.start = time.Now()
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(cw, r, "", time.Time{}, io.NewSectionReader(fd, 0, file.Size))
	case !lease.export && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		fd, err := os.OpenFile(file.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, err := io.Copy(fd, r.Body)
		atomic.AddInt64(&file.Bytes, n)
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Printf("nfc: wrote %d bytes to %s", n, file.Path)
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", map[bool]string{true: "GET, HEAD", false: "PUT, POST"}[lease.export])
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// countingWriter counts the bytes sent and, when cut >= 0, drops the
// connection after that many (failure injection nfc_fail_after); when rate >
// 0 it sends at most rate bytes per second (-nfc-rate, nfc_rate), so that a
// test can act while a download is surely under way.
type countingWriter struct {
	http.ResponseWriter
	n     *int64
	cut   int64
	rate  int64
	start time.Time
	sent  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.rate <= 0 {
		return c.write(p)
	}
	// Small slices keep the pace even: a 32 KiB write at 64 KiB/s would
	// otherwise arrive as one burst per half second.
	chunk := int(c.rate / 20)
	if chunk < 4096 {
		chunk = 4096
	}
	total := 0
	for len(p) > 0 {
		k := len(p)
		if k > chunk {
			k = chunk
		}
		n, err := c.write(p[:k])
		total += n
		c.sent += int64(n)
		if err != nil {
			return total, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		due := c.start.Add(time.Duration(float64(c.sent) / float64(c.rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		p = p[k:]
	}
	return total, nil
}

func (c *countingWriter) write(p []byte) (int, error) {
	if c.cut >= 0 && int64(len(p)) >= c.cut {
		n, _ := c.ResponseWriter.Write(p[:c.cut])
		atomic.AddInt64(c.n, int64(n))
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		log.Printf("nfc: cutting the connection after the injected byte count")
		panic(http.ErrAbortHandler) // net/http closes the connection mid-body
	}
	n, err := c.ResponseWriter.Write(p)
	atomic.AddInt64(c.n, int64(n))
	if c.cut >= 0 {
		c.cut -= int64(n)
	}
	return n, err
}

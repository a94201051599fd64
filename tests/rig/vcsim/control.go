package main

// Test-only control endpoints under /rig/ (plain JSON, no session): a view
// of the simulator's state for assertions, and one-shot failure injection.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type injection struct {
	fault   types.BaseMethodFault
	message string
	inTask  bool
}

func (rg *rig) takeFault(method string) *injection {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	q := rg.faults[method]
	if len(q) == 0 {
		return nil
	}
	rg.faults[method] = q[1:]
	return q[0]
}

func (rg *rig) takeNFCCut() int64 {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if len(rg.nfcCuts) == 0 {
		return -1
	}
	n := rg.nfcCuts[0]
	rg.nfcCuts = rg.nfcCuts[1:]
	return n
}

// takeNFCRate is the rate of the next NFC download: an injected nfc_rate if
// one is queued, else -nfc-rate.
func (rg *rig) takeNFCRate() int64 {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if len(rg.nfcRates) == 0 {
		return rg.nfcRate
	}
	n := rg.nfcRates[0]
	rg.nfcRates = rg.nfcRates[1:]
	return n
}

func (rg *rig) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/rig/state" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, rg.state())
	case r.URL.Path == "/rig/inject" && r.Method == http.MethodPost:
		if err := rg.inject(r); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "GET /rig/state or POST /rig/inject"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// inject queues one-shot failures:
//
//	nfc_fail_after=BYTES     the next NFC download is cut after BYTES bytes
//	nfc_rate=BYTES_PER_SEC   the next NFC download is served at most this
//	                         fast (0: unthrottled), whatever -nfc-rate says
//	fault=Method             the next call of Method answers a SOAP fault:
//	  fault_type=Type        a vim fault type name (default SystemError)
//	  fault_msg=Text         faultstring / localizedMessage
//	  in_task=1              for *_Task methods: the call answers a task that
//	                         ends in state error with the fault instead
//	clear=1                  drop everything queued
func (rg *rig) inject(r *http.Request) error {
	q := r.URL.Query()
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if q.Get("clear") != "" {
		rg.faults = map[string][]*injection{}
		rg.nfcCuts = nil
		rg.nfcRates = nil
	}
	if v := q.Get("nfc_rate"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("nfc_rate: want bytes per second, got %q", v)
		}
		rg.nfcRates = append(rg.nfcRates, n)
	}
	if v := q.Get("nfc_fail_after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("nfc_fail_after: want a byte count, got %q", v)
		}
		rg.nfcCuts = append(rg.nfcCuts, n)
	}
	if method := q.Get("fault"); method != "" {
		kind := q.Get("fault_type")
		if kind == "" {
			kind = "SystemError"
		}
		t, ok := types.TypeFunc()(kind)
		if !ok {
			return fmt.Errorf("fault_type: no vim type %q", kind)
		}
		fault, ok := reflect.New(t).Interface().(types.BaseMethodFault)
		if !ok {
			return fmt.Errorf("fault_type: %q is not a fault", kind)
		}
		msg := q.Get("fault_msg")
		if msg == "" {
			msg = kind + " injected by the test rig"
		}
		if se, ok := fault.(*types.SystemError); ok {
			se.Reason = msg
		}
		rg.faults[method] = append(rg.faults[method], &injection{fault: fault, message: msg, inTask: q.Get("in_task") == "1"})
	}
	return nil
}

type diskState struct {
	Key           int32    `json:"key"`
	Label         string   `json:"label"`
	CapacityBytes int64    `json:"capacity_bytes"`
	Chain         []string `json:"chain"` // backing file, then its parents
}

type snapshotState struct {
	Moref string      `json:"moref"`
	Name  string      `json:"name"`
	Disks []diskState `json:"disks"`
}

type vmState struct {
	Name          string            `json:"name"`
	Moref         string            `json:"moref"`
	UUID          string            `json:"uuid"`
	PowerState    string            `json:"power_state"`
	Template      bool              `json:"template"`
	SnapshotCount int               `json:"snapshot_count"`
	Snapshots     []snapshotState   `json:"snapshots"`
	Disks         []diskState       `json:"disks"`
	Annotation    string            `json:"annotation"`
	ExtraConfig   map[string]string `json:"extra_config"`
}

type leaseState struct {
	Moref  string    `json:"moref"`
	Mode   string    `json:"mode"` // export or import
	State  string    `json:"state"`
	Entity string    `json:"entity"`
	Files  []nfcFile `json:"files"`
}

type fileState struct {
	Path string `json:"path"` // relative to datastore_dir
	Size int64  `json:"size"`
}

type rigState struct {
	DatastoreDir string       `json:"datastore_dir"`
	VMs          []vmState    `json:"vms"`
	Leases       []leaseState `json:"leases"` // open ones only
	Files        []fileState  `json:"files"`
}

func diskStates(devices []types.BaseVirtualDevice) []diskState {
	out := []diskState{}
	for _, d := range object.VirtualDeviceList(devices).SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		ds := diskState{Key: disk.Key, CapacityBytes: diskCapacity(disk), Chain: []string{}}
		if info := disk.DeviceInfo; info != nil {
			ds.Label = info.GetDescription().Label
		}
		b, _ := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		for ; b != nil; b = b.Parent {
			ds.Chain = append(ds.Chain, b.FileName)
		}
		out = append(out, ds)
	}
	return out
}

func (rg *rig) state() *rigState {
	st := &rigState{DatastoreDir: rg.dsDir, VMs: []vmState{}, Leases: []leaseState{}, Files: []fileState{}}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			v := vmState{
				Name: vm.Name, Moref: vm.Self.Value, PowerState: string(vm.Runtime.PowerState),
				Snapshots: []snapshotState{}, ExtraConfig: map[string]string{},
			}
			if c := vm.Config; c != nil {
				v.UUID, v.Template, v.Annotation = c.Uuid, c.Template, c.Annotation
				v.Disks = diskStates(c.Hardware.Device)
				for _, o := range c.ExtraConfig {
					ov := o.GetOptionValue()
					v.ExtraConfig[ov.Key] = fmt.Sprint(ov.Value)
				}
			}
			if vm.Snapshot != nil {
				var walk func([]types.VirtualMachineSnapshotTree)
				walk = func(tree []types.VirtualMachineSnapshotTree) {
					for _, t := range tree {
						s := snapshotState{Moref: t.Snapshot.Value, Name: t.Name, Disks: []diskState{}}
						if snap, ok := simulator.Map.Get(t.Snapshot).(*simulator.VirtualMachineSnapshot); ok {
							s.Disks = diskStates(snap.Config.Hardware.Device)
						}
						v.Snapshots = append(v.Snapshots, s)
						walk(t.ChildSnapshotList)
					}
				}
				walk(vm.Snapshot.RootSnapshotList)
			}
			v.SnapshotCount = len(v.Snapshots)
			st.VMs = append(st.VMs, v)
		})
	}
	sort.Slice(st.VMs, func(i, j int) bool { return st.VMs[i].Name < st.VMs[j].Name })

	rg.mu.Lock()
	var leases []*HttpNfcLease
	for _, l := range rg.leases {
		leases = append(leases, l)
	}
	rg.mu.Unlock()
	for _, l := range leases {
		simulator.Map.WithLock(l, func() {
			ls := leaseState{Moref: l.Self.Value, Mode: "import", State: string(l.State), Entity: l.Info.Entity.Value, Files: []nfcFile{}}
			if l.export {
				ls.Mode = "export"
			}
			for _, f := range l.files {
				ls.Files = append(ls.Files, nfcFile{Name: f.Name, URL: f.URL, Path: f.Path, Size: f.Size,
					Bytes: atomic.LoadInt64(&f.Bytes)})
			}
			sort.Slice(ls.Files, func(i, j int) bool { return ls.Files[i].Name < ls.Files[j].Name })
			st.Leases = append(st.Leases, ls)
		})
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].Moref < st.Leases[j].Moref })

	_ = filepath.Walk(rg.dsDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(rg.dsDir, p)
			st.Files = append(st.Files, fileState{Path: filepath.ToSlash(rel), Size: fi.Size()})
		}
		return nil
	})
	return st
}

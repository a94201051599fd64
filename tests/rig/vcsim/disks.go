package main

// The rig's state, datastore paths and seeded disks.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	seedVM        = "DC0_H0_VM0"
	datastoreName = "LocalDS_0"
)

type rig struct {
	vim          *vim25.Client // in-process client with the simulator's internal session
	scheme       string
	nfcThumb     string // SHA-1 thumbprint put in each deviceUrl (empty with -http)
	dsDir        string
	taskDelay    time.Duration
	leaseTimeout time.Duration
	nfcRate      int64 // -nfc-rate: bytes per second of every NFC download (0: unthrottled)

	mu       sync.Mutex // guards the fields below
	leases   map[string]*HttpNfcLease
	faults   map[string][]*injection
	nfcCuts  []int64
	nfcRates []int64 // injected nfc_rate, one per next download

	chainMu    sync.Mutex                                // serializes disk chain changes; guards the fields below
	snapDeltas map[types.ManagedObjectReference][]string // snapshot -> the delta files its creation made
	vmsn       map[types.ManagedObjectReference]string   // snapshot -> its .vmsn (datastore path)
}

func newRig(vim *vim25.Client, scheme string, taskDelay, leaseTimeout time.Duration) *rig {
	return &rig{
		vim: vim, scheme: scheme, taskDelay: taskDelay, leaseTimeout: leaseTimeout,
		leases:     map[string]*HttpNfcLease{},
		faults:     map[string][]*injection{},
		snapDeltas: map[types.ManagedObjectReference][]string{},
		vmsn:       map[types.ManagedObjectReference]string{},
	}
}

func (rg *rig) datastore(name string) *simulator.Datastore {
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == name {
			return ds
		}
	}
	return nil
}

func (rg *rig) datastoreDir(name string) (string, error) {
	ds := rg.datastore(name)
	if ds == nil {
		return "", fmt.Errorf("no datastore %s", name)
	}
	return ds.Info.GetDatastoreInfo().Url, nil
}

// resolve maps "[ds] dir/file.vmdk" to the file's absolute path.
func (rg *rig) resolve(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("bad datastore path %q", dsPath)
	}
	ds := rg.datastore(p.Datastore)
	if ds == nil {
		return "", fmt.Errorf("no datastore %q", p.Datastore)
	}
	return filepath.Join(ds.Info.GetDatastoreInfo().Url, filepath.FromSlash(p.Path)), nil
}

func (rg *rig) vmByName(name string) *simulator.VirtualMachine {
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm := e.(*simulator.VirtualMachine); vm.Name == name {
			return vm
		}
	}
	return nil
}

func (rg *rig) vmUUID(name string) (string, bool) {
	vm := rg.vmByName(name)
	if vm == nil {
		return "", false
	}
	return vm.Config.Uuid, true
}

// flatName is the extent file the simulator insists on when a disk is
// attached without fileOperation; the rig keeps the data in the descriptor
// name itself (the backing fileName), so the extent stays empty.
func flatName(p string) string { return p[:len(p)-len(".vmdk")] + "-flat.vmdk" }

// seed gives VM name ndisks disks (the model has one) of mib MiB each, filled
// with deterministic pseudo-random data, and returns their sha256.
func (rg *rig) seed(name string, mib, ndisks int) ([]string, error) {
	vm := rg.vmByName(name)
	if vm == nil {
		return nil, fmt.Errorf("no VM %s", name)
	}
	disks := object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	if len(disks) == 0 {
		return nil, fmt.Errorf("%s has no disk", name)
	}
	first := disks[0].(*types.VirtualDisk)
	capKB := int64(mib) * 1024
	if capKB < first.CapacityInKB {
		capKB = first.CapacityInKB
	}
	if ndisks > len(disks) {
		var dir object.DatastorePath
		dir.FromString(first.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName)
		var changes []types.BaseVirtualDeviceConfigSpec
		for k := len(disks); k < ndisks; k++ {
			unit := int32(k)
			if unit >= 7 { // unit 7 is the SCSI controller's own
				unit++
			}
			dir.Path = path.Join(path.Dir(dir.Path), fmt.Sprintf("disk%d.vmdk", k+1))
			changes = append(changes, &types.VirtualDeviceConfigSpec{
				Operation:     types.VirtualDeviceConfigSpecOperationAdd,
				FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate,
				Device: &types.VirtualDisk{
					VirtualDevice: types.VirtualDevice{
						Key:           int32(-100 - k),
						ControllerKey: first.ControllerKey,
						UnitNumber:    &unit,
						Backing: &types.VirtualDiskFlatVer2BackingInfo{
							VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: dir.String()},
							DiskMode:                     string(types.VirtualDiskModePersistent),
							ThinProvisioned:              types.NewBool(true),
						},
					},
					CapacityInKB: capKB,
				},
			})
		}
		res, err := methods.ReconfigVM_Task(context.Background(), rg.vim, &types.ReconfigVM_Task{
			This: vm.Self, Spec: types.VirtualMachineConfigSpec{DeviceChange: changes},
		})
		if err != nil {
			return nil, err
		}
		if t := simulator.Map.Get(res.Returnval).(*simulator.Task); t.Info.Error != nil {
			return nil, fmt.Errorf("adding disks: %s", t.Info.Error.LocalizedMessage)
		}
	}
	if mib == 0 {
		return nil, nil
	}
	var sums []string
	var err error
	simulator.Map.WithLock(vm, func() {
		disks := object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
		for i, d := range disks {
			disk := d.(*types.VirtualDisk)
			// At start-up no snapshot shares these objects: edit in place.
			disk.CapacityInKB = capKB
			disk.CapacityInBytes = capKB * 1024
			var p string
			if p, err = rg.resolve(disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName); err != nil {
				return
			}
			var sum string
			if sum, err = writeSeed(p, int64(mib)<<20, uint64(i)); err != nil {
				return
			}
			sums = append(sums, sum)
			log.Printf("seeded %s: %d MiB sha256 %s", p, mib, sum)
		}
	})
	if err == nil {
		rg.refreshLayout(vm)
	}
	return sums, err
}

// writeSeed writes size bytes of the xorshift64* stream for disk number k:
// state s = 0x9E3779B97F4A7C15 * (k+1); per 8-byte little-endian word,
// s ^= s>>12; s ^= s<<25; s ^= s>>27; word = s * 0x2545F4914F6CDD1D.
func writeSeed(file string, size int64, k uint64) (string, error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(f, 1<<20)
	s := 0x9E3779B97F4A7C15 * (k + 1)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		for i := 0; i < len(buf); i += 8 {
			s ^= s >> 12
			s ^= s << 25
			s ^= s >> 27
			binary.LittleEndian.PutUint64(buf[i:], s*0x2545F4914F6CDD1D)
		}
		n := int64(len(buf))
		if n > left {
			n = left
		}
		h.Write(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return "", err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), f.Close()
}

package main

// Delta disk chains on snapshots. The simulator 0.24.2 lets a snapshot and
// its VM share one backing, which hides the whole point of exporting a
// snapshot: here every snapshot moves the VM to new deltas, and removing a
// snapshot consolidates its deltas, as ESXi does (without data: rig deltas
// are empty).

import (
	"fmt"
	"log"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var deltaSuffix = regexp.MustCompile(`-[0-9]{6}$`)

// newDelta creates the next free "<base>-00000N.vmdk" (and its empty extent)
// in the VM's snapshot directory, as ESXi does.
func (rg *rig) newDelta(dir, parent string) (string, error) {
	var d, p object.DatastorePath
	d.FromString(dir)
	p.FromString(parent)
	if path.Ext(d.Path) == ".vmx" {
		d.Path = path.Dir(d.Path)
	}
	base := deltaSuffix.ReplaceAllString(path.Base(p.Path[:len(p.Path)-len(path.Ext(p.Path))]), "")
	for n := 1; n < 1000000; n++ {
		name := object.DatastorePath{Datastore: d.Datastore, Path: path.Join(d.Path, fmt.Sprintf("%s-%06d.vmdk", base, n))}
		abs, err := rg.resolve(name.String())
		if err != nil {
			return "", err
		}
		f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		f.Close()
		if err := os.WriteFile(flatName(abs), nil, 0600); err != nil {
			return "", err
		}
		return name.String(), nil
	}
	return "", fmt.Errorf("no free delta name for %s", parent)
}

func snapshotRefs(tree []types.VirtualMachineSnapshotTree, out []types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, t := range tree {
		out = append(out, t.Snapshot)
		out = snapshotRefs(t.ChildSnapshotList, out)
	}
	return out
}

func vmSnapshots(vm *simulator.VirtualMachine) []types.ManagedObjectReference {
	if vm.Snapshot == nil {
		return nil
	}
	return snapshotRefs(vm.Snapshot.RootSnapshotList, nil)
}

// addDeltas runs after the simulator made snapshot snap of VM ref: every disk
// of the VM moves to a new delta whose parent is its previous backing, while
// the snapshot's config keeps the previous backing. New device objects are
// made, never edited in place: the snapshot's config shares the old ones.
func (rg *rig) addDeltas(ref, snap types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	var created []string
	simulator.Map.WithLock(vm, func() {
		for _, sl := range vm.LayoutEx.Snapshot {
			if sl.Key != snap {
				continue
			}
			for _, f := range vm.LayoutEx.File {
				if f.Key == sl.DataKey {
					rg.vmsn[snap] = f.Name
				}
			}
		}
		devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
		for i, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			name, err := rg.newDelta(vm.Config.Files.SnapshotDirectory, b.FileName)
			if err != nil {
				log.Printf("snapshot %s: %v", snap.Value, err)
				continue
			}
			nb := *b
			nb.FileName = name
			nb.Parent = b
			nb.DeltaDiskFormat = string(types.VirtualDiskDeltaDiskFormatRedoLogFormat)
			nd := *disk
			nd.Backing = &nb
			devices[i] = &nd
			created = append(created, name)
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	})
	rg.snapDeltas[snap] = created
	log.Printf("snapshot %s of %s: deltas %v", snap.Value, vm.Name, created)
	rg.refreshLayout(vm)
}

// beforeRemove runs before RemoveSnapshot_Task (this = snapshot) or
// RemoveAllSnapshots_Task (this = VM). It returns the VM and its snapshots,
// and hides every snapshot's dataKey from the simulator: the simulator
// deletes the file with that key, but renumbers all keys (RefreshStorageInfo)
// after each removal, so with more than one removal in a call it can delete
// an unrelated file, even a disk. The rig deletes the .vmsn files itself.
func (rg *rig) beforeRemove(this types.ManagedObjectReference) (*simulator.VirtualMachine, []types.ManagedObjectReference) {
	ref := this
	if s, ok := simulator.Map.Get(this).(*simulator.VirtualMachineSnapshot); ok {
		ref = s.Vm
	}
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, nil
	}
	var snaps []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		snaps = vmSnapshots(vm)
		if vm.LayoutEx != nil {
			for i := range vm.LayoutEx.Snapshot {
				vm.LayoutEx.Snapshot[i].DataKey = -1
				vm.LayoutEx.Snapshot[i].MemoryKey = -1
			}
		}
	})
	return vm, snaps
}

// consolidate runs after a snapshot removal: the delta each removed snapshot
// (now out of the VM's tree) created is merged into its parent (rig deltas
// hold no data, so: delete the files and point every backing that used it at
// its parent chain), and its .vmsn is deleted.
func (rg *rig) consolidate(vm *simulator.VirtualMachine, before []types.ManagedObjectReference) {
	left := map[types.ManagedObjectReference]bool{}
	simulator.Map.WithLock(vm, func() {
		for _, s := range vmSnapshots(vm) {
			left[s] = true
		}
	})
	for _, s := range before {
		if left[s] {
			continue
		}
		for _, d := range rg.snapDeltas[s] {
			rg.mergeDelta(d)
		}
		if abs, err := rg.resolve(rg.vmsn[s]); err == nil {
			os.Remove(abs)
		}
		delete(rg.snapDeltas, s)
		delete(rg.vmsn, s)
	}
	rg.refreshLayout(vm)
}

// mergeDelta removes delta file d from every chain: VMs and their snapshots.
func (rg *rig) mergeDelta(d string) {
	var drop func(b *types.VirtualDiskFlatVer2BackingInfo) (*types.VirtualDiskFlatVer2BackingInfo, bool)
	drop = func(b *types.VirtualDiskFlatVer2BackingInfo) (*types.VirtualDiskFlatVer2BackingInfo, bool) {
		if b == nil {
			return nil, false
		}
		if b.FileName == d {
			p, _ := drop(b.Parent)
			return p, true
		}
		p, changed := drop(b.Parent)
		if !changed {
			return b, false
		}
		nb := *b
		nb.Parent = p
		return &nb, true
	}
	rewrite := func(devices []types.BaseVirtualDevice) ([]types.BaseVirtualDevice, bool) {
		out := append([]types.BaseVirtualDevice(nil), devices...)
		any := false
		for i, dev := range out {
			disk, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			if nb, changed := drop(b); changed && nb != nil {
				nd := *disk
				nd.Backing = nb
				out[i] = &nd
				any = true
			}
		}
		return out, any
	}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			if devices, changed := rewrite(vm.Config.Hardware.Device); changed {
				simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
			}
			for _, s := range vmSnapshots(vm) {
				if snap, ok := simulator.Map.Get(s).(*simulator.VirtualMachineSnapshot); ok {
					if devices, changed := rewrite(snap.Config.Hardware.Device); changed {
						snap.Config.Hardware.Device = devices
					}
				}
			}
		})
	}
	if abs, err := rg.resolve(d); err == nil {
		os.Remove(abs)
		os.Remove(flatName(abs))
	}
	log.Printf("consolidated delta %s", d)
}

// fixParents fills in the parent chain of disks attached by file name alone
// (CreateVM_Task/ReconfigVM_Task with an existing delta): on ESXi the chain
// comes from the delta's descriptor, in the rig from the chains it knows.
func (rg *rig) fixParents() {
	known := map[string]*types.VirtualDiskFlatVer2BackingInfo{}
	var note func(b *types.VirtualDiskFlatVer2BackingInfo)
	note = func(b *types.VirtualDiskFlatVer2BackingInfo) {
		for ; b != nil; b = b.Parent {
			if b.Parent != nil && known[b.FileName] == nil {
				known[b.FileName] = b.Parent
			}
		}
	}
	vms := simulator.Map.All("VirtualMachine")
	for _, e := range vms {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			for _, d := range vm.Config.Hardware.Device {
				if disk, ok := d.(*types.VirtualDisk); ok {
					if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
						note(b)
					}
				}
			}
		})
	}
	for _, e := range vms {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
			changed := false
			for i, d := range devices {
				disk, ok := d.(*types.VirtualDisk)
				if !ok {
					continue
				}
				b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
				if !ok || b.Parent != nil || known[b.FileName] == nil {
					continue
				}
				nb := *b
				nb.Parent = known[b.FileName]
				nb.DeltaDiskFormat = string(types.VirtualDiskDeltaDiskFormatRedoLogFormat)
				nd := *disk
				nd.Backing = &nb
				devices[i] = &nd
				changed = true
			}
			if changed {
				simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
			}
		})
	}
}

// refreshLayout rebuilds the VM's layoutEx. The simulator's own
// RefreshStorageInfo is no use here: it names files of the VM directory
// without their directory and renumbers every key, after which a snapshot's
// dataKey points at an unrelated file that RemoveSnapshot then deletes.
func (rg *rig) refreshLayout(vm *simulator.VirtualMachine) {
	simulator.Map.WithLock(vm, func() { rg.rebuildLayout(vm) })
}

func fileType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".vmx":
		return string(types.VirtualMachineFileLayoutExFileTypeConfig)
	case ".nvram":
		return string(types.VirtualMachineFileLayoutExFileTypeNvram)
	case ".vmsn":
		return string(types.VirtualMachineFileLayoutExFileTypeSnapshotData)
	case ".vmsd":
		return string(types.VirtualMachineFileLayoutExFileTypeSnapshotList)
	case ".log":
		return string(types.VirtualMachineFileLayoutExFileTypeLog)
	case ".vmdk":
		if strings.HasSuffix(name, "-flat.vmdk") {
			return string(types.VirtualMachineFileLayoutExFileTypeDiskExtent)
		}
		return string(types.VirtualMachineFileLayoutExFileTypeDiskDescriptor)
	}
	return ""
}

// rebuildLayout keeps the keys of files still present, adds the files of the
// VM directory and of every disk chain (the VM's and its snapshots'), and
// recomputes the disk and snapshot layouts from them. VM locked by caller.
func (rg *rig) rebuildLayout(vm *simulator.VirtualMachine) {
	if vm.LayoutEx == nil || vm.Config == nil {
		return
	}
	keys := map[string]int32{}
	var files []types.VirtualMachineFileLayoutExFileInfo
	next := int32(0)
	add := func(name string, key int32) {
		if _, dup := keys[name]; dup {
			return
		}
		abs, err := rg.resolve(name)
		if err != nil {
			return
		}
		fi, err := os.Stat(abs)
		if err != nil || !fi.Mode().IsRegular() {
			return
		}
		if key < 0 {
			key = next
		}
		if key >= next {
			next = key + 1
		}
		keys[name] = key
		files = append(files, types.VirtualMachineFileLayoutExFileInfo{
			Key: key, Name: name, Type: fileType(name), Size: fi.Size(), UniqueSize: fi.Size(), Accessible: types.NewBool(true),
		})
	}
	for _, f := range vm.LayoutEx.File {
		if f.Key >= next {
			next = f.Key + 1
		}
	}
	for _, f := range vm.LayoutEx.File {
		add(f.Name, f.Key)
	}
	var dir object.DatastorePath
	dir.FromString(vm.Config.Files.VmPathName)
	if path.Ext(dir.Path) == ".vmx" {
		dir.Path = path.Dir(dir.Path)
	}
	if abs, err := rg.resolve(dir.String()); err == nil {
		entries, _ := os.ReadDir(abs)
		for _, e := range entries { // sorted by name: deterministic keys
			p := object.DatastorePath{Datastore: dir.Datastore, Path: path.Join(dir.Path, e.Name())}
			add(p.String(), -1)
		}
	}
	chains := func(devices []types.BaseVirtualDevice) []types.VirtualMachineFileLayoutExDiskLayout {
		var out []types.VirtualMachineFileLayoutExDiskLayout
		for _, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			dl := types.VirtualMachineFileLayoutExDiskLayout{Key: disk.Key}
			b, _ := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			for ; b != nil; b = b.Parent {
				var unit types.VirtualMachineFileLayoutExDiskUnit
				for _, n := range []string{b.FileName, flatName(b.FileName)} {
					add(n, -1)
					if k, ok := keys[n]; ok {
						unit.FileKey = append(unit.FileKey, k)
					}
				}
				dl.Chain = append(dl.Chain, unit)
			}
			out = append(out, dl)
		}
		return out
	}
	vm.LayoutEx.Disk = chains(vm.Config.Hardware.Device)
	var snaps []types.VirtualMachineFileLayoutExSnapshotLayout
	for _, s := range vmSnapshots(vm) {
		snap, ok := simulator.Map.Get(s).(*simulator.VirtualMachineSnapshot)
		if !ok {
			continue
		}
		sl := types.VirtualMachineFileLayoutExSnapshotLayout{Key: s, DataKey: -1, MemoryKey: -1}
		if name, ok := rg.vmsn[s]; ok {
			add(name, -1)
			if k, ok := keys[name]; ok {
				sl.DataKey = k
			}
		}
		sl.Disk = chains(snap.Config.Hardware.Device)
		snaps = append(snaps, sl)
	}
	vm.LayoutEx.Snapshot = snaps
	vm.LayoutEx.File = files
	vm.LayoutEx.Timestamp = time.Now()

	var disks []types.VirtualMachineFileLayoutDiskLayout
	for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		dl := types.VirtualMachineFileLayoutDiskLayout{Key: d.GetVirtualDevice().Key}
		b, _ := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		for ; b != nil; b = b.Parent {
			dl.DiskFile = append(dl.DiskFile, b.FileName)
		}
		disks = append(disks, dl)
	}
	if vm.Layout != nil {
		vm.Layout.Disk = disks
	}
}

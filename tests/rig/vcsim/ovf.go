package main

// OvfManager.CreateDescriptor, which the simulator 0.24.2 lacks. The manager
// object is replaced in the registry by one that embeds the simulator's (by
// value: the property collector digs the mo type out of the first field).

import (
	"fmt"
	"log"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

type OvfManager struct {
	simulator.OvfManager
}

func (rg *rig) installOvfManager() {
	ref := *rg.vim.ServiceContent.OvfManager
	orig := simulator.Map.Get(ref).(*simulator.OvfManager)
	simulator.Map.Put(&OvfManager{*orig})
}

func (m *OvfManager) CreateDescriptor(req *types.CreateDescriptor) soap.HasFault {
	body := new(methods.CreateDescriptorBody)
	vm, ok := simulator.Map.Get(req.Obj).(*simulator.VirtualMachine)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Obj})
		return body
	}
	var desc string
	simulator.Map.WithLock(vm, func() { desc = ovfDescriptor(vm, &req.Cdp) })
	body.Res = &types.CreateDescriptorResponse{Returnval: types.OvfCreateDescriptorResult{
		OvfDescriptor:     desc,
		IncludeImageFiles: types.NewBool(false),
	}}
	return body
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// capacityAttrs writes a capacity the way govmomi's own OVF reader (used by
// CreateImportSpec) understands: with capacityAllocationUnits always set.
func capacityAttrs(bytes int64) string {
	switch {
	case bytes > 0 && bytes%(1<<30) == 0:
		return fmt.Sprintf(`ovf:capacity="%d" ovf:capacityAllocationUnits="byte * 2^30"`, bytes>>30)
	case bytes > 0 && bytes%(1<<20) == 0:
		return fmt.Sprintf(`ovf:capacity="%d" ovf:capacityAllocationUnits="byte * 2^20"`, bytes>>20)
	}
	return fmt.Sprintf(`ovf:capacity="%d" ovf:capacityAllocationUnits="byte"`, bytes)
}

// controllerSubType is the OVF ResourceSubType vCenter writes for a controller.
func controllerSubType(c types.BaseVirtualDevice) (resourceType int, subType string) {
	switch c.(type) {
	case *types.VirtualIDEController:
		return 5, ""
	case *types.ParaVirtualSCSIController:
		return 6, "VirtualSCSI"
	case *types.VirtualLsiLogicController:
		return 6, "lsilogic"
	case *types.VirtualLsiLogicSASController:
		return 6, "lsilogicsas"
	case *types.VirtualBusLogicController:
		return 6, "buslogic"
	case *types.VirtualAHCIController:
		return 20, "vmware.sata.ahci"
	}
	return 0, ""
}

// ovfDescriptor describes vm as an OVF 1.x envelope: one File per
// cdp.ovfFiles entry, each disk linked to the file whose deviceId is its
// lease key, and a minimal VirtualHardwareSection. No time stamps or random
// ids: the same VM and params give the same bytes. VM locked by caller.
func ovfDescriptor(vm *simulator.VirtualMachine, cdp *types.OvfCreateDescriptorParams) string {
	name := cdp.Name
	if name == "" {
		name = vm.Name
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	var b strings.Builder
	p := func(format string, a ...interface{}) { fmt.Fprintf(&b, format, a...); b.WriteByte('\n') }

	p(`<?xml version="1.0" encoding="UTF-8"?>`)
	p(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	p(`  <References>`)
	fileOf := map[string]int{} // deviceId -> index in cdp.OvfFiles
	for i, f := range cdp.OvfFiles {
		extra := ""
		if f.CompressionMethod != "" {
			extra += fmt.Sprintf(` ovf:compression="%s"`, esc(f.CompressionMethod))
		}
		if f.ChunkSize > 0 {
			extra += fmt.Sprintf(` ovf:chunkSize="%d"`, f.ChunkSize)
		}
		p(`    <File ovf:href="%s" ovf:id="file%d" ovf:size="%d"%s/>`, esc(f.Path), i+1, f.Size, extra)
		fileOf[f.DeviceId] = i
	}
	p(`  </References>`)

	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	p(`  <DiskSection>`)
	p(`    <Info>Virtual disk information</Info>`)
	n := map[string]int{}
	matched := map[string]bool{}
	for i, d := range disks {
		key, _ := deviceKeys(vm, devices, n, d)
		attrs := capacityAttrs(diskCapacity(d.(*types.VirtualDisk)))
		attrs += fmt.Sprintf(` ovf:diskId="vmdisk%d"`, i+1)
		if j, ok := fileOf[key]; ok {
			matched[key] = true
			attrs += fmt.Sprintf(` ovf:fileRef="file%d"`, j+1)
			if f := cdp.OvfFiles[j]; f.PopulatedSize > 0 {
				attrs += fmt.Sprintf(` ovf:populatedSize="%d"`, f.PopulatedSize)
			}
		}
		p(`    <Disk %s ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`, attrs)
	}
	for _, f := range cdp.OvfFiles {
		if !matched[f.DeviceId] {
			// vCenter would not link it either; say so for whoever debugs the test.
			log.Printf("CreateDescriptor: ovfFiles deviceId %q matches no disk of %s", f.DeviceId, vm.Name)
		}
	}
	p(`  </DiskSection>`)

	p(`  <VirtualSystem ovf:id="%s">`, esc(name))
	p(`    <Info>A virtual machine</Info>`)
	p(`    <Name>%s</Name>`, esc(name))
	if desc := cdp.Description; desc != "" {
		p(`    <AnnotationSection>`)
		p(`      <Info>A human-readable annotation</Info>`)
		p(`      <Annotation>%s</Annotation>`, esc(desc))
		p(`    </AnnotationSection>`)
	}
	p(`    <OperatingSystemSection ovf:id="1" vmw:osType="%s">`, esc(vm.Config.GuestId))
	p(`      <Info>The kind of installed guest operating system</Info>`)
	p(`    </OperatingSystemSection>`)
	p(`    <VirtualHardwareSection>`)
	p(`      <Info>Virtual hardware requirements</Info>`)
	p(`      <System>`)
	p(`        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>`)
	p(`        <vssd:InstanceID>0</vssd:InstanceID>`)
	p(`        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>`, esc(name))
	p(`        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>`, esc(vm.Config.Version))
	p(`      </System>`)
	cpus, mem := vm.Config.Hardware.NumCPU, vm.Config.Hardware.MemoryMB
	item := func(lines ...string) {
		p(`      <Item>`)
		for _, l := range lines {
			p(`        %s`, l)
		}
		p(`      </Item>`)
	}
	item(`<rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>`,
		`<rasd:Description>Number of Virtual CPUs</rasd:Description>`,
		fmt.Sprintf(`<rasd:ElementName>%d virtual CPU(s)</rasd:ElementName>`, cpus),
		`<rasd:InstanceID>1</rasd:InstanceID>`,
		`<rasd:ResourceType>3</rasd:ResourceType>`,
		fmt.Sprintf(`<rasd:VirtualQuantity>%d</rasd:VirtualQuantity>`, cpus))
	item(`<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>`,
		`<rasd:Description>Memory Size</rasd:Description>`,
		fmt.Sprintf(`<rasd:ElementName>%dMB of memory</rasd:ElementName>`, mem),
		`<rasd:InstanceID>2</rasd:InstanceID>`,
		`<rasd:ResourceType>4</rasd:ResourceType>`,
		fmt.Sprintf(`<rasd:VirtualQuantity>%d</rasd:VirtualQuantity>`, mem))
	instance := 3
	ctrlID := map[int32]int{} // controller device key -> InstanceID
	for _, d := range disks {
		ck := d.GetVirtualDevice().ControllerKey
		if _, done := ctrlID[ck]; done {
			continue
		}
		c := devices.FindByKey(ck)
		if c == nil {
			continue
		}
		rt, sub := controllerSubType(c)
		if rt == 0 {
			continue
		}
		ctrlID[ck] = instance
		bus := c.(types.BaseVirtualController).GetVirtualController().BusNumber
		label := map[int]string{5: "IDE %d", 6: "SCSI controller %d", 20: "SATA controller %d"}[rt]
		lines := []string{fmt.Sprintf(`<rasd:Address>%d</rasd:Address>`, bus),
			`<rasd:Description>Disk controller</rasd:Description>`,
			fmt.Sprintf(`<rasd:ElementName>`+label+`</rasd:ElementName>`, bus),
			fmt.Sprintf(`<rasd:InstanceID>%d</rasd:InstanceID>`, instance)}
		if sub != "" {
			lines = append(lines, fmt.Sprintf(`<rasd:ResourceSubType>%s</rasd:ResourceSubType>`, sub))
		}
		lines = append(lines, fmt.Sprintf(`<rasd:ResourceType>%d</rasd:ResourceType>`, rt))
		item(lines...)
		instance++
	}
	for i, d := range disks {
		v := d.GetVirtualDevice()
		parent, ok := ctrlID[v.ControllerKey]
		if !ok {
			continue
		}
		unit := int32(0)
		if v.UnitNumber != nil {
			unit = *v.UnitNumber
		}
		item(fmt.Sprintf(`<rasd:AddressOnParent>%d</rasd:AddressOnParent>`, unit),
			fmt.Sprintf(`<rasd:ElementName>Hard disk %d</rasd:ElementName>`, i+1),
			fmt.Sprintf(`<rasd:HostResource>ovf:/disk/vmdisk%d</rasd:HostResource>`, i+1),
			fmt.Sprintf(`<rasd:InstanceID>%d</rasd:InstanceID>`, instance),
			fmt.Sprintf(`<rasd:Parent>%d</rasd:Parent>`, parent),
			`<rasd:ResourceType>17</rasd:ResourceType>`)
		instance++
	}
	p(`    </VirtualHardwareSection>`)
	p(`  </VirtualSystem>`)
	p(`</Envelope>`)
	return b.String()
}

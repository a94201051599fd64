package main

// The front handler: every request passes here before the simulator's
// ServeMux. SOAP calls are decoded once to pick out the methods the rig
// answers itself, the injected faults and the delayed tasks; everything else
// is forwarded unchanged (in-process, through an httptest recorder so the rig
// can fix up state before the client sees the answer).

import (
	"bytes"
	"context"
	stdxml "encoding/xml"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

type front struct {
	rig *rig
	mux http.Handler // the simulator's
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/rig/"):
		f.rig.serveControl(w, r)
	case strings.HasPrefix(r.URL.Path, "/nfc/"):
		f.rig.serveNFC(w, r)
	case r.URL.Path == "/sdk" && r.Method == http.MethodPost:
		f.serveSOAP(w, r)
	default:
		f.mux.ServeHTTP(w, r)
	}
}

func (f *front) serveSOAP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil { // let the simulator word the fault
		replay(w, f.forward(r, body))
		return
	}
	if inj := f.rig.takeFault(m.Name); inj != nil {
		log.Printf("injected %T into %s", inj.fault, m.Name)
		if inj.inTask && isTask(m.Name) {
			f.asyncTask(w, r, body, m, inj)
		} else {
			replay(w, faultRecorder(inj.message, inj.fault))
		}
		return
	}
	if f.rig.taskDelay > 0 && isTask(m.Name) {
		f.asyncTask(w, r, body, m, nil)
		return
	}
	replay(w, f.dispatch(r, body, m))
}

func isTask(method string) bool { return strings.HasSuffix(method, "_Task") }

// dispatch answers one decoded call: the rig's own methods, or the simulator
// with the rig's fix-ups after it.
func (f *front) dispatch(r *http.Request, body []byte, m *simulator.Method) *httptest.ResponseRecorder {
	rg := f.rig
	switch req := m.Body.(type) {
	case *types.ExportVm:
		return f.local(r, func() (interface{}, types.BaseMethodFault) {
			ref, fault := rg.exportVM(req.This)
			if _, ok := fault.(*types.InvalidPowerState); ok {
				return nil, &withMessage{fault, "The attempted operation cannot be performed in the current state (Powered on)."}
			}
			return &types.ExportVmResponse{Returnval: ref}, fault
		})
	case *types.ImportVApp:
		return f.local(r, func() (interface{}, types.BaseMethodFault) {
			ref, fault := rg.importVApp(req)
			return &types.ImportVAppResponse{Returnval: ref}, fault
		})
	case *types.CreateSnapshot_Task:
		rg.chainMu.Lock()
		defer rg.chainMu.Unlock()
		rec := f.forward(r, body)
		if info := finishedTask(rec); info != nil && info.State == types.TaskInfoStateSuccess {
			rg.addDeltas(req.This, info.Result.(types.ManagedObjectReference))
		}
		return rec
	case *types.RemoveSnapshot_Task, *types.RemoveAllSnapshots_Task:
		rg.chainMu.Lock()
		defer rg.chainMu.Unlock()
		vm, snaps := rg.beforeRemove(m.This)
		rec := f.forward(r, body)
		if vm != nil {
			rg.consolidate(vm, snaps)
		}
		return rec
	case *types.Destroy_Task, *types.PowerOnVM_Task:
		// "While the lease is held, operations that alter the state of the
		// virtual machines covered by the lease are blocked. Examples of
		// blocked operations are PowerOn, Destroy, Migrate" (HttpNfcLease).
		if l := rg.leaseOn(m.This); l != "" {
			return faultRecorder("The operation is not allowed in the current state.", &types.InvalidState{})
		}
	case *types.CreateVM_Task, *types.ReconfigVM_Task:
		rg.chainMu.Lock()
		defer rg.chainMu.Unlock()
		rec := f.forward(r, body)
		rg.fixParents()
		return rec
	}
	return f.forward(r, body)
}

// forward hands a call to the simulator. The clone carries the caller's
// session cookie; its context is not the request's because a delayed task
// runs after the request is gone (ServeSDK ignores it anyway).
func (f *front) forward(r *http.Request, body []byte) *httptest.ResponseRecorder {
	r2 := r.Clone(context.Background())
	r2.URL.Path = "/sdk"
	r2.Method = http.MethodPost
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, r2)
	return rec
}

const currentTimeCall = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>
</soapenv:Body></soapenv:Envelope>`

// authorized tells whether the caller has a session: the simulator keeps its
// sessions private, so ask it with a harmless call under the caller's cookie.
func (f *front) authorized(r *http.Request) bool {
	return f.forward(r, []byte(currentTimeCall)).Code == http.StatusOK
}

var notAuthenticated = &types.NotAuthenticated{NoPermission: types.NoPermission{PrivilegeId: "System.View"}}

// withMessage gives a fault the faultstring vCenter would use.
type withMessage struct {
	types.BaseMethodFault
	msg string
}

// local runs a method the rig implements itself, for an authenticated caller.
func (f *front) local(r *http.Request, call func() (interface{}, types.BaseMethodFault)) *httptest.ResponseRecorder {
	if !f.authorized(r) {
		return faultRecorder("", notAuthenticated)
	}
	res, fault := call()
	if wm, ok := fault.(*withMessage); ok {
		return faultRecorder(wm.msg, wm.BaseMethodFault)
	}
	if fault != nil {
		return faultRecorder("", fault)
	}
	return responseRecorder(res)
}

// asyncTask answers a *_Task call at once with a queued task and runs the call
// later, the way a real vCenter does (the simulator finishes tasks before it
// answers). With inj, the task ends with the injected fault instead.
func (f *front) asyncTask(w http.ResponseWriter, r *http.Request, body []byte, m *simulator.Method, inj *injection) {
	if !f.authorized(r) {
		replay(w, faultRecorder("", notAuthenticated))
		return
	}
	name := strings.TrimSuffix(m.Name, "_Task")
	task := simulator.CreateTask(m.This, strings.ToLower(name[:1])+name[1:]+"Task", nil)

	r2 := r.Clone(context.Background())
	// Under the task's lock: the property collector reads the task under it.
	update := func(changes ...types.PropertyChange) {
		simulator.Map.WithLock(task, func() { simulator.Map.Update(task, changes) })
	}
	run := func() {
		d := f.rig.taskDelay
		time.Sleep(d / 4)
		now := time.Now()
		update(types.PropertyChange{Name: "info.state", Val: types.TaskInfoStateRunning},
			types.PropertyChange{Name: "info.startTime", Val: now},
			types.PropertyChange{Name: "info.progress", Val: int32(0)})
		const steps = 4
		for i := 1; i <= steps; i++ {
			time.Sleep(d * 3 / 4 / steps)
			if i < steps {
				update(types.PropertyChange{Name: "info.progress", Val: int32(i * 100 / steps)})
			}
		}
		var result types.AnyType
		var fault types.BaseMethodFault
		if inj != nil {
			fault = inj.fault
		} else {
			result, fault = taskOutcome(f.dispatch(r2, body, m))
		}
		var lf interface{}
		state := types.TaskInfoStateSuccess
		if fault != nil {
			state = types.TaskInfoStateError
			lf = types.LocalizedMethodFault{Fault: fault, LocalizedMessage: faultMessage(inj, fault)}
		}
		update(types.PropertyChange{Name: "info.completeTime", Val: time.Now()},
			types.PropertyChange{Name: "info.state", Val: state},
			types.PropertyChange{Name: "info.result", Val: result},
			types.PropertyChange{Name: "info.error", Val: lf})
	}
	if f.rig.taskDelay == 0 {
		run() // an injected task fault without delay: done before the answer, as the simulator does
	} else {
		go run()
	}
	// Every *_Task answer is <Name_TaskResponse><returnval type="Task">.
	res := &struct {
		Returnval types.ManagedObjectReference `xml:"returnval"`
	}{task.Self}
	replay(w, encodeEnvelope(http.StatusOK, soapResponse{m.Name + "Response", res}))
}

func faultMessage(inj *injection, fault types.BaseMethodFault) string {
	if inj != nil && inj.message != "" {
		return inj.message
	}
	return reflect.TypeOf(fault).Elem().Name()
}

// taskOutcome reads what a forwarded *_Task call produced: the result or
// fault of the task it returned, or the SOAP fault it answered with.
func taskOutcome(rec *httptest.ResponseRecorder) (types.AnyType, types.BaseMethodFault) {
	if info := finishedTask(rec); info != nil {
		if info.Error != nil {
			return nil, info.Error.Fault
		}
		return info.Result, nil
	}
	return nil, decodeFault(rec.Body.Bytes())
}

// finishedTask returns the info of the task a successful *_Task answer names
// (the simulator's tasks are finished by then).
func finishedTask(rec *httptest.ResponseRecorder) *types.TaskInfo {
	if rec.Code != http.StatusOK {
		return nil
	}
	var env struct {
		Body struct {
			Res struct {
				Returnval struct {
					Type  string `xml:"type,attr"`
					Value string `xml:",chardata"`
				} `xml:"returnval"`
			} `xml:",any"`
		} `xml:"Body"`
	}
	if stdxml.Unmarshal(rec.Body.Bytes(), &env) != nil {
		return nil
	}
	ref := types.ManagedObjectReference{Type: env.Body.Res.Returnval.Type, Value: env.Body.Res.Returnval.Value}
	if t, ok := simulator.Map.Get(ref).(*simulator.Task); ok {
		info := t.Info
		return &info
	}
	return nil
}

// decodeFault turns a SOAP fault answer back into the vim fault it carries.
func decodeFault(b []byte) types.BaseMethodFault {
	var body struct {
		Fault *soap.Fault `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&soap.Envelope{Body: &body}); err == nil && body.Fault != nil {
		if f := asMethodFault(body.Fault.Detail.Fault); f != nil {
			return f
		}
		return &types.SystemError{Reason: body.Fault.String}
	}
	return &types.SystemError{Reason: "undecodable answer"}
}

// asMethodFault gives a decoded fault detail as a vim fault. The decoder
// yields values (types.ManagedObjectNotFound), whose methods are on the
// pointer: without this, every fault a delayed task relayed became a bare
// SystemError (a snapshot already removed answered SystemError, not
// ManagedObjectNotFound).
func asMethodFault(v interface{}) types.BaseMethodFault {
	if f, ok := v.(types.BaseMethodFault); ok {
		return f
	}
	if v == nil {
		return nil
	}
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	if f, ok := p.Interface().(types.BaseMethodFault); ok {
		return f
	}
	return nil
}

// replay copies a recorded answer to the client.
func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// The SOAP encoding below mirrors the simulator's own (simulator.go), which
// is private: same envelope, namespaces and fault layout as its answers.

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

// soapResponse is the body of an answer: res as element name (by default
// the name of res's type, e.g. ExportVmResponse) in the urn:vim25 namespace.
type soapResponse struct {
	name string
	res  interface{}
}

func (r soapResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	name := r.name
	if name == "" {
		name = reflect.TypeOf(r.res).Elem().Name()
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(r.res, xml.StartElement{Name: xml.Name{Space: "urn:vim25", Local: name}}); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

type faultDetail struct{ Fault types.BaseMethodFault }

// MarshalXML names the detail element "<Type>Fault" with xsi:type, as vCenter does.
func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:vim25"},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

func encodeEnvelope(status int, body interface{}) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/xml; charset=utf-8")
	var out bytes.Buffer
	out.WriteString(xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding SOAP answer: %v", err)
		rec.WriteHeader(http.StatusInternalServerError)
		return rec
	}
	rec.WriteHeader(status)
	rec.Body = &out
	return rec
}

func responseRecorder(res interface{}) *httptest.ResponseRecorder {
	return encodeEnvelope(http.StatusOK, soapResponse{"", res})
}

func faultRecorder(msg string, fault types.BaseMethodFault) *httptest.ResponseRecorder {
	if msg == "" {
		msg = reflect.TypeOf(fault).Elem().Name()
	}
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{fault}
	return encodeEnvelope(http.StatusInternalServerError, struct{ Fault *soapFault }{f})
}

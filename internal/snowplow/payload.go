// Package snowplow is the Snowplow collector's record format: the
// CollectorPayload of iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0,
// serialized with Thrift's binary protocol, as the Snowplow collector
// writes each request to its raw stream. sluice's collector writes it and
// the decode stage (format: snowplow) reads it. The codec is written
// against the published IDL (collector-payload.thrift):
//
//	struct CollectorPayload {
//	  31337: string schema
//	  100: string ipAddress
//	  200: i64 timestamp
//	  210: string encoding
//	  220: string collector
//	  300: optional string userAgent
//	  310: optional string refererUri
//	  320: optional string path
//	  330: optional string querystring
//	  340: optional string body
//	  350: optional list<string> headers
//	  360: optional string contentType
//	  400: optional string hostname
//	  410: optional string networkUserId
//	}
package snowplow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Schema is the schema URI a CollectorPayload carries in field 31337.
const Schema = "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0"

// SchemaPrefix is what every version of the payload's schema starts with.
const SchemaPrefix = "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-"

// CollectorPayload is one collector request. A field absent from the
// record is its zero value; Has tells the optional strings apart from "".
type CollectorPayload struct {
	Schema        string
	IPAddress     string
	Timestamp     int64 // ms since the Unix epoch, when the collector received the request
	Encoding      string
	Collector     string
	UserAgent     string
	RefererURI    string
	Path          string
	Querystring   string
	Body          string
	Headers       []string
	ContentType   string
	Hostname      string
	NetworkUserID string

	// Present are the fields the record had (by Field* bit).
	Present uint16
}

// Bits of CollectorPayload.Present.
const (
	HasUserAgent uint16 = 1 << iota
	HasRefererURI
	HasPath
	HasQuerystring
	HasBody
	HasHeaders
	HasContentType
	HasHostname
	HasNetworkUserID
	HasTimestamp
	HasSchema
)

// Thrift binary protocol type ids.
const (
	tStop   = 0
	tBool   = 2
	tByte   = 3
	tDouble = 4
	tI16    = 6
	tI32    = 8
	tI64    = 10
	tString = 11
	tStruct = 12
	tMap    = 13
	tSet    = 14
	tList   = 15
)

// Marshal appends p in Thrift's binary protocol to dst.
func (p *CollectorPayload) Marshal(dst []byte) []byte {
	str := func(id int16, s string) {
		dst = append(dst, tString)
		dst = binary.BigEndian.AppendUint16(dst, uint16(id))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	opt := func(bit uint16, id int16, s string) {
		if p.Present&bit != 0 || s != "" {
			str(id, s)
		}
	}
	str(31337, p.Schema)
	str(100, p.IPAddress)
	dst = append(dst, tI64)
	dst = binary.BigEndian.AppendUint16(dst, 200)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.Timestamp))
	str(210, p.Encoding)
	str(220, p.Collector)
	opt(HasUserAgent, 300, p.UserAgent)
	opt(HasRefererURI, 310, p.RefererURI)
	opt(HasPath, 320, p.Path)
	opt(HasQuerystring, 330, p.Querystring)
	opt(HasBody, 340, p.Body)
	if p.Present&HasHeaders != 0 || len(p.Headers) > 0 {
		dst = append(dst, tList)
		dst = binary.BigEndian.AppendUint16(dst, 350)
		dst = append(dst, tString)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Headers)))
		for _, h := range p.Headers {
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(h)))
			dst = append(dst, h...)
		}
	}
	opt(HasContentType, 360, p.ContentType)
	opt(HasHostname, 400, p.Hostname)
	opt(HasNetworkUserID, 410, p.NetworkUserID)
	return append(dst, tStop)
}

// View is a CollectorPayload read without copying: its byte fields alias
// the record they were read from, valid as long as it is.
type View struct {
	Schema, IPAddress, Encoding, Collector, UserAgent, RefererURI []byte
	Path, Querystring, Body, ContentType, Hostname, NetworkUserID []byte
	Timestamp                                                     int64
	Headers                                                       [][]byte
	Present                                                       uint16
}

// ErrNotPayload wraps every reason a record is not a CollectorPayload.
var ErrNotPayload = errors.New("not a Snowplow CollectorPayload")

// maxDepth bounds the nesting of unknown fields Unmarshal skips.
const maxDepth = 16

// Unmarshal reads a CollectorPayload from b, which must hold exactly one
// (a Thrift binary struct and nothing after it). Unknown fields are
// skipped; a known field of the wrong type, a length past the end, or
// trailing bytes are errors wrapping ErrNotPayload.
func Unmarshal(b []byte, p *CollectorPayload) error {
	var v View
	if err := UnmarshalView(b, &v); err != nil {
		*p = CollectorPayload{}
		return err
	}
	*p = CollectorPayload{
		Schema: string(v.Schema), IPAddress: string(v.IPAddress), Timestamp: v.Timestamp,
		Encoding: string(v.Encoding), Collector: string(v.Collector), UserAgent: string(v.UserAgent),
		RefererURI: string(v.RefererURI), Path: string(v.Path), Querystring: string(v.Querystring),
		Body: string(v.Body), ContentType: string(v.ContentType), Hostname: string(v.Hostname),
		NetworkUserID: string(v.NetworkUserID), Present: v.Present,
	}
	if v.Headers != nil {
		p.Headers = make([]string, len(v.Headers))
		for i, h := range v.Headers {
			p.Headers[i] = string(h)
		}
	}
	return nil
}

// UnmarshalView is Unmarshal without copies: v's fields alias b.
func UnmarshalView(b []byte, p *View) error {
	*p = View{}
	r := reader{b: b}
	for {
		typ := r.byte()
		if r.err != nil {
			return r.fail()
		}
		if typ == tStop {
			break
		}
		id := int16(r.u16())
		var s *[]byte
		var bit uint16
		switch id {
		case 31337:
			s, bit = &p.Schema, HasSchema
		case 100:
			s = &p.IPAddress
		case 210:
			s = &p.Encoding
		case 220:
			s = &p.Collector
		case 300:
			s, bit = &p.UserAgent, HasUserAgent
		case 310:
			s, bit = &p.RefererURI, HasRefererURI
		case 320:
			s, bit = &p.Path, HasPath
		case 330:
			s, bit = &p.Querystring, HasQuerystring
		case 340:
			s, bit = &p.Body, HasBody
		case 360:
			s, bit = &p.ContentType, HasContentType
		case 400:
			s, bit = &p.Hostname, HasHostname
		case 410:
			s, bit = &p.NetworkUserID, HasNetworkUserID
		case 200:
			if typ != tI64 {
				return fmt.Errorf("%w: field 200 (timestamp) has type %d, want i64", ErrNotPayload, typ)
			}
			p.Timestamp = int64(r.u64())
			p.Present |= HasTimestamp
			continue
		case 350:
			if typ != tList {
				return fmt.Errorf("%w: field 350 (headers) has type %d, want list", ErrNotPayload, typ)
			}
			et, n := r.byte(), r.size()
			if r.err != nil {
				return r.fail()
			}
			if et != tString {
				return fmt.Errorf("%w: field 350 (headers) holds type %d, want string", ErrNotPayload, et)
			}
			p.Headers = make([][]byte, 0, min(n, 64))
			for range n {
				p.Headers = append(p.Headers, r.bytes())
				if r.err != nil {
					return r.fail()
				}
			}
			p.Present |= HasHeaders
			continue
		default:
			r.skip(typ, 0)
			if r.err != nil {
				return r.fail()
			}
			continue
		}
		if typ != tString {
			return fmt.Errorf("%w: field %d has type %d, want string", ErrNotPayload, id, typ)
		}
		*s = r.bytes()
		p.Present |= bit
		if r.err != nil {
			return r.fail()
		}
	}
	if len(r.b) != r.off {
		return fmt.Errorf("%w: %d bytes after the struct", ErrNotPayload, len(r.b)-r.off)
	}
	return nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() error {
	return fmt.Errorf("%w: %v", ErrNotPayload, r.err)
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("truncated at byte %d (need %d more)", r.off, n)
		return false
	}
	return true
}

func (r *reader) byte() byte {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.BigEndian.Uint16(r.b[r.off-2:])
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.BigEndian.Uint32(r.b[r.off-4:])
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.BigEndian.Uint64(r.b[r.off-8:])
}

// size reads a length or count, which must fit what is left.
func (r *reader) size() int {
	n := r.u32()
	if r.err == nil && (n > math.MaxInt32 || int(n) > len(r.b)-r.off) {
		r.err = fmt.Errorf("length %d at byte %d past the end", n, r.off-4)
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.size()
	if !r.need(n) {
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off : r.off]
}

// skip passes over a value of type typ.
func (r *reader) skip(typ byte, depth int) {
	if depth > maxDepth {
		r.err = errors.New("nested too deep")
		return
	}
	switch typ {
	case tBool, tByte:
		r.need(1)
		r.off++
	case tI16:
		r.need(2)
		r.off += 2
	case tI32:
		r.need(4)
		r.off += 4
	case tI64, tDouble:
		r.need(8)
		r.off += 8
	case tString:
		n := r.size()
		if r.need(n) {
			r.off += n
		}
	case tStruct:
		for r.err == nil {
			t := r.byte()
			if t == tStop || r.err != nil {
				return
			}
			r.u16()
			r.skip(t, depth+1)
		}
	case tMap:
		kt, vt, n := r.byte(), r.byte(), r.size()
		for i := 0; i < n && r.err == nil; i++ {
			r.skip(kt, depth+1)
			r.skip(vt, depth+1)
		}
	case tSet, tList:
		et, n := r.byte(), r.size()
		for i := 0; i < n && r.err == nil; i++ {
			r.skip(et, depth+1)
		}
	default:
		r.err = fmt.Errorf("unknown Thrift type %d at byte %d", typ, r.off)
	}
	if r.err == nil && r.off > len(r.b) {
		r.err = errors.New("truncated")
	}
}

// Package pseudonymize replaces user identifiers with keyed pseudonyms:
// lowercase hex HMAC-SHA256(key, id as text). The same id and key always
// give the same pseudonym, so joins across days keep working, while the
// raw id never leaves the pipeline. Keys come from environment variables or
// files (a mounted Kubernetes Secret); several can be configured for
// rotation, one of them active.
package pseudonymize

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/sluicedata/sluice/internal/arena"
	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "pseudonymize"

// MinKeyBytes is the shortest key accepted: a short key makes pseudonyms
// guessable by brute force over likely ids.
const MinKeyBytes = 16

// KeySpec says where one key comes from: exactly one of Env and File.
type KeySpec struct {
	ID   string `yaml:"id"`
	Env  string `yaml:"env,omitempty"`
	File string `yaml:"file,omitempty"`
}

// LoadKeys reads every key: the exact bytes of the environment variable,
// or of the file less one trailing newline. It reports every problem at
// once and never includes key material in an error.
func LoadKeys(specs []KeySpec, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string][]byte, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	keys := make(map[string][]byte, len(specs))
	var errs []error
	for _, s := range specs {
		var key []byte
		switch {
		case s.ID == "":
			errs = append(errs, errors.New("a key needs an id"))
			continue
		case (s.Env == "") == (s.File == ""):
			errs = append(errs, fmt.Errorf("key %s: set exactly one of env and file", s.ID))
			continue
		case s.Env != "":
			v, ok := lookupEnv(s.Env)
			if !ok {
				errs = append(errs, fmt.Errorf("key %s: environment variable %s is not set", s.ID, s.Env))
				continue
			}
			key = []byte(v)
		default:
			b, err := readFile(s.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("key %s: %w", s.ID, err))
				continue
			}
			key = b
			if n := len(key); n > 0 && key[n-1] == '\n' {
				key = key[:n-1]
			}
		}
		if len(key) < MinKeyBytes {
			errs = append(errs, fmt.Errorf("key %s: %d bytes, at least %d required", s.ID, len(key), MinKeyBytes))
			continue
		}
		if _, dup := keys[s.ID]; dup {
			errs = append(errs, fmt.Errorf("key %s: configured twice", s.ID))
			continue
		}
		keys[s.ID] = key
	}
	return keys, errors.Join(errs...)
}

// Options configure the stage.
type Options struct {
	Keys   map[string][]byte // id → key
	Active string            // id of the key that makes pseudonyms
	// Fields are more fields to pseudonymize in place: "session_id", or
	// "properties.NAME" for a top-level string or number in properties.
	Fields []string
}

// Validate reports every problem of o.
func (o Options) Validate() error {
	var errs []error
	if _, ok := o.Keys[o.Active]; !ok {
		errs = append(errs, fmt.Errorf("active key %q is not among the configured keys", o.Active))
	}
	for _, f := range o.Fields {
		if f != "session_id" && !(strings.HasPrefix(f, "properties.") && len(f) > len("properties.")) {
			errs = append(errs, fmt.Errorf("field %q: want session_id or properties.NAME", f))
		}
	}
	return errors.Join(errs...)
}

// Stage pseudonymizes the events of one partition.
type Stage struct {
	keyID   string
	mac     hash.Hash
	sum     []byte
	idbuf   []byte
	hexbuf  [2 * sha256.Size]byte
	text    *arena.Text // the batch's arena while Process runs (nil: strings of their own)
	session bool
	props   []string
	parser  fastjson.Parser
	arena   fastjson.Arena
	buf     []byte
}

// New returns a stage.
func New(o Options) (*Stage, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("pseudonymize: %w", err)
	}
	s := &Stage{
		keyID: o.Active,
		mac:   hmac.New(sha256.New, o.Keys[o.Active]),
	}
	for _, f := range o.Fields {
		if f == "session_id" {
			s.session = true
		} else {
			s.props = append(s.props, strings.TrimPrefix(f, "properties."))
		}
	}
	return s, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Pseudonym returns the pseudonym of id under the active key. During
// Process it is text of the batch (valid while the batch is processed);
// called alone it is a string of its own.
//
// Pseudonyms are computed for every value, not cached: HMAC-SHA256 of a
// short id is two SHA-256 blocks from the precomputed key states (about
// 180 ns), less than a lookup in a cache shared by the partitions cost
// once its entries no longer fit the processor's caches (BENCHMARKS.md).
func (s *Stage) Pseudonym(id string) string {
	s.mac.Reset()
	s.idbuf = append(s.idbuf[:0], id...)
	s.mac.Write(s.idbuf)
	s.sum = s.mac.Sum(s.sum[:0])
	hex.Encode(s.hexbuf[:], s.sum)
	return s.text.Keep(s.hexbuf[:])
}

// Process implements pipeline.Stage. The raw user id is cleared from the
// event once its pseudonym is set, so no later stage or sink can see it.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	s.text = &b.Text
	defer func() { s.text = nil }()
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep {
			continue
		}
		// A present id is pseudonymized whatever its value, "" included
		// (DESIGN.md: NULL only when the input had no value).
		if e.Has(pipeline.HasUserID) {
			e.UserPseudoID = s.Pseudonym(e.UserID)
			e.PseudoKeyID = s.keyID
			e.UserID = ""
			e.Present &^= pipeline.HasUserID
		}
		// The Snowplow cookie ids are personal data like the user id.
		if e.Has(pipeline.HasDomainUserID) {
			e.DomainUserPseudoID = s.Pseudonym(e.DomainUserID)
			e.PseudoKeyID = s.keyID
			e.DomainUserID = ""
			e.Present &^= pipeline.HasDomainUserID
		}
		if e.Has(pipeline.HasNetworkUserID) {
			e.NetworkUserPseudoID = s.Pseudonym(e.NetworkUserID)
			e.PseudoKeyID = s.keyID
			e.NetworkUserID = ""
			e.Present &^= pipeline.HasNetworkUserID
		}
		if s.session && e.Has(pipeline.HasSessionID) {
			e.SessionID = s.Pseudonym(e.SessionID)
		}
		if len(s.props) > 0 && e.Properties != "" {
			e.Properties = s.properties(e.Properties)
		}
	}
	return nil
}

// properties rewrites the configured top-level properties as pseudonyms.
// Values that are not strings or numbers are replaced by null: they cannot
// be pseudonymized and must not pass through.
func (s *Stage) properties(js string) string {
	v, err := s.parser.Parse(js)
	if err != nil {
		return js // decode produced it; cannot happen
	}
	o, err := v.Object()
	if err != nil {
		return js
	}
	changed := false
	s.arena.Reset()
	for _, name := range s.props {
		fv := o.Get(name)
		if fv == nil {
			continue
		}
		changed = true
		switch fv.Type() {
		case fastjson.TypeString:
			raw, _ := fv.StringBytes()
			o.Set(name, s.arena.NewString(s.Pseudonym(string(raw))))
		case fastjson.TypeNumber:
			s.buf = fv.MarshalTo(s.buf[:0])
			o.Set(name, s.arena.NewString(s.Pseudonym(string(s.buf))))
		default:
			o.Set(name, s.arena.NewNull())
		}
	}
	if !changed {
		return js
	}
	s.buf = v.MarshalTo(s.buf[:0])
	return string(s.buf)
}

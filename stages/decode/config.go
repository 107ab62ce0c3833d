package decode

// Config is the decode stage's keys in the stage list: none yet (the input
// format is sluice's JSON, DESIGN.md "Input events").
type Config struct{}

// Validate reports every problem of c.
func (Config) Validate() error { return nil }

package objstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicedata/sluice/pipeline/delivery"
)

// StateStore keeps the partitions' delivery state in Store, under the keys
// delivery.StateKey gives (_sluice/state/…), with the store's
// compare-and-swap writes: it is the delivery.StateStore of a sink.
type StateStore struct{ Store Store }

// Load implements delivery.StateStore.
func (a StateStore) Load(ctx context.Context, key string) ([]byte, string, error) {
	b, v, err := a.Store.GetVersion(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return nil, "", fmt.Errorf("%w: %v", delivery.ErrStateNotFound, err)
	}
	return b, v, err
}

// Save implements delivery.StateStore.
func (a StateStore) Save(ctx context.Context, key string, data []byte, version string) (string, error) {
	v, err := a.Store.PutIf(ctx, key, data, version)
	if errors.Is(err, ErrPrecondition) {
		return "", fmt.Errorf("%w: %v", delivery.ErrStateConflict, err)
	}
	return v, err
}

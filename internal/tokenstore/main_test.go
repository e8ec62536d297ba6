package tokenstore

import (
	"testing"

	"github.com/bipsync/terraform-provider-bipsync/internal/tokenstore/pgtest"
)

// TestMain removes the PostgreSQL server the postgres store's tests share, once they are done.
func TestMain(m *testing.M) { pgtest.Main(m) }

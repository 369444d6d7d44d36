package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/storage/clickhouse"
)

// migrateTimeout bounds one `twice migrate`.
const migrateTimeout = 5 * time.Minute

func newMigrateCmd(e env) *cobra.Command {
	var dsn, retention string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade twice's tables in ClickHouse",
		Long: `migrate creates twice's tables in the ClickHouse database of --dsn, or
upgrades them: it applies the versioned migrations not yet recorded in the
table twice_migrations. Running it again changes nothing.

The DSN is clickhouse://host:9000/database (native protocol) or
http://host:8123/database (HTTP); without --dsn, $TWICE_CLICKHOUSE_DSN.`,
		Example: `  twice migrate --dsn clickhouse://127.0.0.1:9000/default
  twice migrate --dsn http://127.0.0.1:8123/twice --retention 2160h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dsn == "" {
				dsn = e.getenv("TWICE_CLICKHOUSE_DSN")
			}
			if dsn == "" {
				return usageErr("migrate needs --dsn (or $TWICE_CLICKHOUSE_DSN)")
			}
			var opts clickhouse.Options
			if retention != "" {
				d, err := time.ParseDuration(retention)
				if err != nil || d <= 0 {
					return usageErr("--retention %q: want a positive Go duration (720h)", retention)
				}
				opts.Retention = d
			}
			st, err := clickhouse.Open(dsn, opts)
			if err != nil {
				return usageErr("%v", err)
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), migrateTimeout)
			defer cancel()
			if err := st.Migrate(ctx); err != nil {
				return inputErr(err)
			}
			v, err := st.Version(ctx)
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: schema at version %d\n", st.DSN(), v)
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "dsn", "", "ClickHouse DSN: clickhouse://host:9000/db or http://host:8123/db")
	cmd.Flags().StringVar(&retention, "retention", "", "keep events and findings this long (event time), as a TTL")
	return cmd
}

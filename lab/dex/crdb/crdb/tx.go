// Package crdb keeps the signature Dex v2.13.0 was written against (2018):
// ExecuteTx(db, fn). The only cockroach-go the module proxy serves (v2.0.1) takes a context
// and options. Dex calls it only for its CockroachDB storage, which the lab never uses; this
// runs fn once in a transaction, without CockroachDB's retry loop.
package crdb

import "database/sql"

// ExecuteTx runs fn in a transaction on db and commits it, or rolls back when fn fails.
func ExecuteTx(db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

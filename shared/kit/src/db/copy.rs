//! PostgreSQL's `COPY … FROM STDIN`: rows in its text format ([`CopyRows`]) and one
//! statement that writes them ([`copy_in`]).

use sea_orm::DatabaseConnection;

/// Rows for PostgreSQL's `COPY … FROM STDIN` in its text format: fields separated by tabs,
/// rows ended by newlines, and backslash, tab, newline and carriage return escaped.
#[derive(Debug, Default)]
pub struct CopyRows {
    buf: String,
    row_started: bool,
}

impl CopyRows {
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.separate();
        for c in s.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                c => self.buf.push(c),
            }
        }
        self
    }

    pub fn int(&mut self, n: i64) -> &mut Self {
        self.separate();
        self.buf.push_str(&n.to_string());
        self
    }

    pub fn end_row(&mut self) {
        self.buf.push('\n');
        self.row_started = false;
    }

    fn separate(&mut self) {
        if self.row_started {
            self.buf.push('\t');
        }
        self.row_started = true;
    }
}

/// Writes `rows` with `statement` (`COPY table (columns) FROM STDIN`) on PostgreSQL, as one
/// statement: all rows or none. Cheaper for PostgreSQL than the same rows as multi-row
/// `INSERT`s, whose thousands of parameters are each bound and planned.
pub async fn copy_in(db: &DatabaseConnection, statement: &str, rows: CopyRows) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let failed = |e: sea_orm::sqlx::Error| sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e)));
    let mut copy = db.get_postgres_connection_pool().copy_in_raw(statement).await.map_err(failed)?;
    if let Err(e) = copy.send(rows.buf.into_bytes()).await {
        let _ = copy.abort("sending the rows failed").await;
        return Err(failed(e));
    }
    copy.finish().await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_the_text_format() {
        let mut rows = CopyRows::default();
        rows.text("plain").int(-7).text("tab\there\nnew\\line\r");
        rows.end_row();
        rows.int(1);
        rows.end_row();
        assert_eq!(rows.buf, "plain\t-7\ttab\\there\\nnew\\\\line\\r\n1\n");
    }
}

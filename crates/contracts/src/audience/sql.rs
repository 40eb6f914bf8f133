//! A filter as SQL on the `users` table: every literal a bound parameter,
//! every leaf two-valued (see the module's documentation).

use super::{Attribute, Comparison, Dialect, Filter, Param, Sql};

impl Comparison {
    /// Its SQL operator (`!=` is the negation of `=`: see [`Filter::write_sql`]).
    fn sql(self) -> &'static str {
        match self {
            Comparison::Eq | Comparison::Ne => "=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }
}

impl Attribute {
    /// Its value in SQL, in `dialect`: a column of `users`, or for a
    /// free-form attribute the text of its key's JSON value (the key
    /// bound through `bind`, as every literal is).
    fn sql(&self, dialect: Dialect, sql: &mut Sql, bind: impl Fn(&mut Sql, Param) -> String) -> String {
        match (self, dialect) {
            (Attribute::Free(key), Dialect::Sqlite) => {
                let path = bind(sql, Param::Text(format!("$.\"{key}\"")));
                format!("CAST(json_extract(users.attributes, {path}) AS TEXT)")
            }
            (Attribute::Free(key), Dialect::Postgres) => {
                let key = bind(sql, Param::Text(key.clone()));
                format!("(users.attributes::jsonb ->> {key})")
            }
            (column, _) => format!("users.{}", column.name()),
        }
    }
}

impl Filter {
    /// Appends this filter's SQL in `dialect` to `sql`, its placeholders
    /// numbered from `$first`.
    pub(super) fn write_sql(&self, first: usize, dialect: Dialect, sql: &mut Sql) {
        let bind = move |sql: &mut Sql, value: Param| {
            sql.params.push(value);
            format!("${}", first + sql.params.len() - 1)
        };
        // A test of a value that may be missing is false there (two-valued
        // logic); its negation is then true there.
        let guarded = |attribute: &Attribute, value: &str, test: String, negated: bool| {
            let test = if attribute.nullable() {
                format!("({value} IS NOT NULL AND {test})")
            } else {
                format!("({test})")
            };
            if negated {
                format!("(NOT {test})")
            } else {
                test
            }
        };
        let leaf = match self {
            Filter::Compare {
                attribute,
                comparison,
                value,
            } => {
                let column = attribute.sql(dialect, sql, bind);
                let placeholder = bind(sql, value.clone());
                let test = format!("{column} {} {placeholder}", comparison.sql());
                guarded(attribute, &column, test, *comparison == Comparison::Ne)
            }
            Filter::In {
                attribute,
                values,
                negated,
            } => {
                let column = attribute.sql(dialect, sql, bind);
                let list: Vec<String> = values.iter().map(|value| bind(sql, value.clone())).collect();
                let test = format!("{column} IN ({})", list.join(", "));
                guarded(attribute, &column, test, *negated)
            }
            Filter::Tag { tag, negated } => {
                let placeholder = bind(sql, Param::Text(tag.clone()));
                format!(
                    "({}EXISTS (SELECT 1 FROM user_tags WHERE user_tags.user_id = users.id AND user_tags.tag = {placeholder}))",
                    if *negated { "NOT " } else { "" }
                )
            }
            Filter::Null { attribute, negated } => format!(
                "({} IS {}NULL)",
                attribute.sql(dialect, sql, bind),
                if *negated { "NOT " } else { "" }
            ),
            Filter::And(_) | Filter::Or(_) | Filter::Not(_) => String::new(),
        };
        sql.clause.push_str(&leaf);
        match self {
            Filter::And(all) | Filter::Or(all) => {
                let joint = if matches!(self, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.clause.push('(');
                for (n, filter) in all.iter().enumerate() {
                    if n > 0 {
                        sql.clause.push_str(joint);
                    }
                    filter.write_sql(first, dialect, sql);
                }
                sql.clause.push(')');
            }
            Filter::Not(filter) => {
                sql.clause.push_str("(NOT ");
                filter.write_sql(first, dialect, sql);
                sql.clause.push(')');
            }
            _ => {}
        }
    }
}

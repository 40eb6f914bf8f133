//! A filter as SQL on the `users` table: every literal a bound parameter,
//! every leaf two-valued (see the module's documentation).

use super::{Attribute, Comparison, Filter, Param, Sql};

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

impl Filter {
    /// Appends this filter's SQL to `sql`, its placeholders numbered from
    /// `$first`.
    pub(super) fn write_sql(&self, first: usize, sql: &mut Sql) {
        let bind = |sql: &mut Sql, value: Param| {
            sql.params.push(value);
            format!("${}", first + sql.params.len() - 1)
        };
        // A test of a column that may be NULL is false there (two-valued
        // logic); its negation is then true there.
        let guarded = |attribute: Attribute, test: String, negated: bool| {
            let test = if attribute.nullable() {
                format!("(users.{} IS NOT NULL AND {test})", attribute.name())
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
                let placeholder = bind(sql, value.clone());
                let test = format!("users.{} {} {placeholder}", attribute.name(), comparison.sql());
                guarded(*attribute, test, *comparison == Comparison::Ne)
            }
            Filter::In {
                attribute,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(|value| bind(sql, value.clone())).collect();
                let test = format!("users.{} IN ({})", attribute.name(), list.join(", "));
                guarded(*attribute, test, *negated)
            }
            Filter::Tag { tag, negated } => {
                let placeholder = bind(sql, Param::Text(tag.clone()));
                format!(
                    "({}EXISTS (SELECT 1 FROM user_tags WHERE user_tags.user_id = users.id AND user_tags.tag = {placeholder}))",
                    if *negated { "NOT " } else { "" }
                )
            }
            Filter::Null { attribute, negated } => format!(
                "(users.{} IS {}NULL)",
                attribute.name(),
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
                    filter.write_sql(first, sql);
                }
                sql.clause.push(')');
            }
            Filter::Not(filter) => {
                sql.clause.push_str("(NOT ");
                filter.write_sql(first, sql);
                sql.clause.push(')');
            }
            _ => {}
        }
    }
}

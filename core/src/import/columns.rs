//! Which field each column of a file fills: guessed from the column names
//! in the languages of spreadsheets people keep (`E-mail`, `Surname`,
//! `Post code`, `Member ID`), or named by the person importing
//! (`--map COLUMN=FIELD`).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::DocKind;

/// A contact field a CSV column can fill.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Name,
    FirstName,
    LastName,
    PreferredName,
    Phone,
    Email,
    Street,
    City,
    Region,
    PostalCode,
    Country,
    Language,
    Roles,
    Tags,
    Interests,
    Household,
    Organisation,
    ExternalId,
    /// `custom`: `key=value; key=value` (as exported).
    CustomPairs,
    /// `custom.KEY`: one custom field.
    Custom(String),
    /// `merged_into` (as exported): a row for a merged duplicate is skipped.
    MergedInto,
}

/// Every field name `--map` accepts (besides `custom.KEY` and `ignore`).
pub const FIELD_NAMES: &str = "id, name, first_name, last_name, preferred_name, phone, email, \
     street, city, region, postal_code, country, preferred_language, roles, tags, interests, \
     household, organisation, external_id, custom, custom.KEY, merged_into";

impl Field {
    /// The field's name, as the preview and `--map` write it.
    pub fn name(&self) -> String {
        match self {
            Field::Id => "id",
            Field::Name => "name",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::PreferredName => "preferred_name",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Street => "street",
            Field::City => "city",
            Field::Region => "region",
            Field::PostalCode => "postal_code",
            Field::Country => "country",
            Field::Language => "preferred_language",
            Field::Roles => "roles",
            Field::Tags => "tags",
            Field::Interests => "interests",
            Field::Household => "household",
            Field::Organisation => "organisation",
            Field::ExternalId => "external_id",
            Field::CustomPairs => "custom",
            Field::Custom(key) => return format!("custom.{key}"),
            Field::MergedInto => "merged_into",
        }
        .to_owned()
    }

    /// Whether several columns may fill this field (their values add up).
    fn takes_many(&self) -> bool {
        matches!(
            self,
            Field::Phone
                | Field::Email
                | Field::Roles
                | Field::Tags
                | Field::Interests
                | Field::CustomPairs
        )
    }

    /// The field a column header names, compared case-insensitively with
    /// spaces, `_`, `-`, `.` and `/` alike; `None` for a column to ignore.
    pub(crate) fn guess(header: &str) -> Option<Field> {
        let trimmed = header.trim();
        if let Some(key) = trimmed
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("custom."))
            .map(|_| trimmed[7..].trim())
        {
            return (!key.is_empty()).then(|| Field::Custom(key.to_owned()));
        }
        let words: String = trimmed
            .to_lowercase()
            .split(|c: char| c.is_whitespace() || matches!(c, '_' | '-' | '.' | '/'))
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Some(match words.as_str() {
            "id" | "muster id" | "contact id" => Field::Id,
            "name" | "full name" | "fullname" | "contact name" | "display name" => Field::Name,
            "first name" | "firstname" | "first" | "given name" | "forename" => Field::FirstName,
            "last name" | "lastname" | "last" | "surname" | "family name" => Field::LastName,
            "preferred name" | "nickname" | "known as" => Field::PreferredName,
            "phone" | "phones" | "phone number" | "phone numbers" | "mobile" | "mobile phone"
            | "mobile number" | "cell" | "cell phone" | "telephone" | "tel" | "home phone"
            | "work phone" | "landline" => Field::Phone,
            "email" | "emails" | "e mail" | "email address" | "e mail address" | "mail" => {
                Field::Email
            }
            "street" | "address" | "street address" | "address line 1" | "address 1" => {
                Field::Street
            }
            "city" | "town" | "town city" => Field::City,
            "region" | "state" | "county" | "province" => Field::Region,
            "postal code" | "postcode" | "post code" | "zip" | "zip code" | "zipcode" => {
                Field::PostalCode
            }
            "country" => Field::Country,
            "preferred language" | "language" | "lang" => Field::Language,
            "roles" | "role" => Field::Roles,
            "tags" | "tag" | "labels" => Field::Tags,
            "interests" | "interest" => Field::Interests,
            "household" | "household id" => Field::Household,
            "organisation" | "organization" | "company" | "org" | "employer" => Field::Organisation,
            "external id" | "externalid" | "id in other system" | "other system id"
            | "external ref" | "reference" | "ref" | "crm id" | "legacy id" | "member id"
            | "membership id" | "membership number" | "supporter id" | "donor id"
            | "constituent id" => Field::ExternalId,
            "custom" => Field::CustomPairs,
            "merged into" => Field::MergedInto,
            _ => return None,
        })
    }

    /// A field as `--map` names it: its name, or what a header may say.
    fn parse(name: &str) -> Option<Field> {
        match name.trim().to_lowercase().as_str() {
            "language" => Some(Field::Language),
            "phones" => Some(Field::Phone),
            "emails" => Some(Field::Email),
            _ => Field::guess(name),
        }
    }
}

/// One column of the file and what it is read as.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's name in the file.
    pub header: String,
    /// The field it fills; `None`: ignored.
    pub field: Option<Field>,
    /// Why the column is read so (or ignored), when it is not plain.
    pub note: Option<String>,
}

/// Reads the headers as fields: `--map` first, then the guesses in column
/// order; a field that takes one value goes to the first column that names
/// it, and first/last names only count when no column gives the full name.
pub(crate) fn map_columns(headers: &[String], overrides: &[String]) -> Result<Vec<Column>> {
    let mut columns: Vec<Column> = headers
        .iter()
        .map(|h| Column {
            header: h.clone(),
            field: None,
            note: None,
        })
        .collect();
    let mut by_map = vec![false; columns.len()];
    for spec in overrides {
        let (column, field) = spec.rsplit_once('=').ok_or_else(|| {
            Error::BadImport(format!(
                "--map {spec:?}: write COLUMN=FIELD, e.g. --map \"Mobile 2=phone\""
            ))
        })?;
        let field = match field.trim().to_lowercase().as_str() {
            "ignore" | "none" | "-" | "" => None,
            _ => Some(Field::parse(field).ok_or_else(|| {
                Error::BadImport(format!(
                    "--map {spec:?}: {field:?} is not a field; fields are {FIELD_NAMES}, or ignore"
                ))
            })?),
        };
        let mut found = false;
        for (i, c) in columns.iter_mut().enumerate() {
            if c.header.trim().to_lowercase() == column.trim().to_lowercase() {
                c.field = field.clone();
                c.note = Some(if field.is_some() {
                    "--map".to_owned()
                } else {
                    "ignored by --map".to_owned()
                });
                by_map[i] = true;
                found = true;
            }
        }
        if !found {
            return Err(Error::BadImport(format!(
                "--map {spec:?}: no column is called {column:?}; the columns are {}",
                quoted_list(headers)
            )));
        }
    }
    for (i, c) in columns.iter_mut().enumerate() {
        if !by_map[i] {
            c.field = Field::guess(&c.header);
        }
    }
    // One column per single-valued field: --map first, then the leftmost.
    let mut taken: HashMap<Field, String> = HashMap::new();
    for pass_by_map in [true, false] {
        for (i, c) in columns.iter_mut().enumerate() {
            if by_map[i] != pass_by_map {
                continue;
            }
            let Some(field) = c.field.clone() else {
                continue;
            };
            if field.takes_many() {
                continue;
            }
            match taken.get(&field) {
                Some(first) => {
                    c.note = Some(format!("{} already comes from {first:?}", field.name()));
                    c.field = None;
                }
                None => {
                    taken.insert(field, c.header.clone());
                }
            }
        }
    }
    if let Some(full) = taken.get(&Field::Name).cloned() {
        for c in &mut columns {
            if matches!(c.field, Some(Field::FirstName | Field::LastName)) {
                c.note = Some(format!("the name comes from {full:?}"));
                c.field = None;
            }
        }
    }
    Ok(columns)
}

pub(crate) fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column guessed to be `id` whose values are not Muster ids is another
/// system's id: read it as `external_id` (or ignore it if a column already
/// gives that). Decided on the first values of the column.
pub(crate) fn reconsider_id_column(columns: &mut [Column], sample: &[Vec<String>]) {
    let Some(at) = columns
        .iter()
        .position(|c| c.field == Some(Field::Id) && c.note.is_none())
    else {
        return;
    };
    let values: Vec<&str> = sample
        .iter()
        .filter_map(|row| row.get(at).map(|v| v.trim()))
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty()
        || values
            .iter()
            .any(|v| DocKind::of_id(v) == Some(DocKind::Contact))
    {
        return;
    }
    let has_external = columns.iter().any(|c| c.field == Some(Field::ExternalId));
    let column = &mut columns[at];
    if has_external {
        column.field = None;
        column.note =
            Some("holds no Muster ids (c_…), and external_id comes from another column".into());
    } else {
        column.field = Some(Field::ExternalId);
        column.note = Some("holds no Muster ids (c_…): read as another system's id".into());
    }
}

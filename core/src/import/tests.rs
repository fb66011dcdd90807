//! The column guesses, the separator sniffing and the row rules.

use super::columns::{map_columns, reconsider_id_column};
use super::file::sniff_delimiter;
use super::*;

fn headers(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn fields(columns: &[Column]) -> Vec<Option<String>> {
    columns
        .iter()
        .map(|c| c.field.as_ref().map(Field::name))
        .collect()
}

#[test]
fn common_headers_are_recognised_whatever_their_case() {
    let cols = map_columns(
        &headers(&[
            "Full Name",
            "E-mail",
            "MOBILE",
            "Telephone",
            "ID in other system",
            "Post code",
            "Organization",
            "Member ID",
            "Favourite colour",
            "custom.shirt",
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(
        fields(&cols),
        vec![
            Some("name".into()),
            Some("email".into()),
            Some("phone".into()),
            Some("phone".into()),
            Some("external_id".into()),
            Some("postal_code".into()),
            Some("organisation".into()),
            None,
            None,
            Some("custom.shirt".into()),
        ]
    );
    assert_eq!(
        cols[7].note.as_deref(),
        Some("external_id already comes from \"ID in other system\"")
    );
    assert_eq!(Field::guess("member_id"), Some(Field::ExternalId));
    assert_eq!(Field::guess(" Town/City "), Some(Field::City));
    assert_eq!(Field::guess("colour"), None);
}

#[test]
fn map_overrides_and_one_column_per_single_field() {
    let cols = map_columns(
        &headers(&["Name", "Nom complet", "First name", "City", "Town"]),
        &["nom complet=name".into(), "city=ignore".into()],
    )
    .unwrap();
    assert_eq!(
        fields(&cols),
        vec![None, Some("name".into()), None, None, Some("city".into())]
    );
    assert_eq!(
        cols[0].note.as_deref(),
        Some("name already comes from \"Nom complet\"")
    );
    assert_eq!(
        cols[2].note.as_deref(),
        Some("the name comes from \"Nom complet\"")
    );
    let err = map_columns(&headers(&["Name"]), &["Phone=phone".into()]).unwrap_err();
    assert!(
        err.to_string().contains("no column is called \"Phone\""),
        "{err}"
    );
    let err = map_columns(&headers(&["Name"]), &["Name=shoe size".into()]).unwrap_err();
    assert!(err.to_string().contains("is not a field"), "{err}");
}

#[test]
fn an_id_column_without_muster_ids_is_another_systems_id() {
    let mut cols = map_columns(&headers(&["ID", "Name"]), &[]).unwrap();
    reconsider_id_column(&mut cols, &[vec!["1042".into(), "Ana".into()]]);
    assert_eq!(cols[0].field, Some(Field::ExternalId));
    let mut cols = map_columns(&headers(&["ID", "Name"]), &[]).unwrap();
    reconsider_id_column(
        &mut cols,
        &[vec![
            "c_0123456789abcdef0123456789abcdef".into(),
            "Ana".into(),
        ]],
    );
    assert_eq!(cols[0].field, Some(Field::Id));
}

#[test]
fn separators_are_guessed_from_the_first_row() {
    assert_eq!(sniff_delimiter(b"name,email\nA;B,c"), b',');
    assert_eq!(sniff_delimiter(b"name;email;\"a,b\"\n"), b';');
    assert_eq!(sniff_delimiter(b"name\temail\n"), b'\t');
    assert_eq!(sniff_delimiter(b"name\n"), b',');
}

#[test]
fn rows_are_checked_and_put_in_canonical_form() {
    let cols = map_columns(
        &headers(&["first name", "last name", "phone", "email", "roles", "tags"]),
        &[],
    )
    .unwrap();
    let row = |cells: &[&str]| {
        RowPatch::parse(
            &cells.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            &cols,
            "GB",
        )
    };
    let p = row(&[
        " Ana ",
        "Silva",
        "07700 900123; +44 7700 900123",
        "Ana@Example.ORG",
        "Volunteer",
        "choir, kitchen",
    ])
    .unwrap();
    assert_eq!(p.edit.name.as_deref(), Some("Ana Silva"));
    assert_eq!(p.edit.add_phones, vec!["+447700900123"]);
    assert_eq!(p.edit.add_emails, vec!["Ana@example.org"]);
    assert_eq!(p.edit.add_roles, vec!["volunteer"]);
    assert_eq!(p.edit.add_tags, vec!["choir", "kitchen"]);
    assert_eq!(
        row(&["Ana", "", "", "ana.example.org", "", ""]).unwrap_err(),
        "invalid email: \"ana.example.org\" has no @"
    );
    assert!(
        row(&["Ana", "", "", "", "helper", ""])
            .unwrap_err()
            .starts_with("invalid role: \"helper\"")
    );
    assert!(
        row(&["Ana", "", "call me", "", "", ""])
            .unwrap_err()
            .starts_with("invalid phone")
    );
}

#[test]
fn applying_a_row_adds_what_is_new_and_keeps_the_rest() {
    let cols = map_columns(&headers(&["name", "phone", "email", "city"]), &[]).unwrap();
    let cells: Vec<String> = ["Ana Silva", "+44 7700 900123", "ANA@example.org", ""]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let p = RowPatch::parse(&cells, &cols, "GB").unwrap();
    let mut c = blank("Ana Silva").unwrap();
    c.phones = vec!["07700 900123".into()];
    c.emails = vec!["ana@example.org".into()];
    c.address.city = "Leeds".into();
    let before = c.clone();
    p.apply(&mut c, "GB");
    assert_eq!(c, before, "nothing new: nothing changes");
}

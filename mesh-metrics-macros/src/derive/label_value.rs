//! `#[derive(LabelValue)]`: a fieldless enum whose variants are a label's values.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

use super::{nested, string_value};
use crate::names::{Errors, unraw};

const RENAME_RULES: &str = "\"snake_case\", \"kebab-case\", \"lowercase\", \"UPPERCASE\", \"SCREAMING_SNAKE_CASE\", \
                            \"camelCase\", \"PascalCase\"";

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let ident = &input.ident;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            ident,
            "#[derive(LabelValue)] goes on a fieldless enum, one variant per label value: `enum Currency { Usd, Eur }`",
        ));
    };
    if !input.generics.params.is_empty() {
        errors.add(&input.generics, "a label value enum cannot be generic");
    }
    let mut rename_all: Option<LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    nested(&input.attrs, "label", &mut errors, |meta| {
        if meta.path.is_ident("crate") {
            krate = Some(super::crate_value(meta)?);
            Ok(())
        } else if meta.path.is_ident("rename_all") {
            let rule = string_value(meta)?;
            if convert("Probe", &rule.value()).is_none() {
                return Err(syn::Error::new_spanned(&rule, format!("unknown rename rule; use one of {RENAME_RULES}")));
            }
            rename_all = Some(rule);
            Ok(())
        } else {
            Err(meta.error("on the enum, #[label(...)] takes `rename_all = \"...\"` and `crate = path`"))
        }
    });
    if data.variants.is_empty() {
        errors.add(ident, "a label value enum needs at least one variant: each variant is one label value");
    }
    let rule = rename_all.as_ref().map_or_else(|| "snake_case".to_owned(), LitStr::value);
    let mut values: Vec<(syn::Ident, String)> = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.add(
                &variant.fields,
                "a label value is a fieldless variant: write `Variant,` (a label whose values carry data is \
                 unbounded: make it a `#[label(unbounded)]` field of the label set instead)",
            );
        }
        if let Some((_, discriminant)) = &variant.discriminant {
            errors.add(discriminant, "label value variants take no discriminant; the value is the variant's name");
        }
        let mut value = convert(&unraw(&variant.ident), &rule).unwrap_or_default();
        nested(&variant.attrs, "label", &mut errors, |meta| {
            if meta.path.is_ident("rename") {
                let renamed = string_value(meta)?;
                value = renamed.value();
                Ok(())
            } else {
                Err(meta.error("on a variant, #[label(...)] takes `rename = \"...\"`"))
            }
        });
        if let Some((first, _)) = values.iter().find(|(_, existing)| *existing == value) {
            errors.add(
                &variant.ident,
                format!(
                    "`{first}` already has the label value \"{value}\"; give one of them `#[label(rename = \"...\")]`"
                ),
            );
        }
        values.push((variant.ident.clone(), value));
    }
    errors.finish()?;

    let strings = values.iter().map(|(_, value)| value);
    let indices = values.iter().enumerate().map(|(index, (variant, _))| quote!(Self::#variant => #index));
    let names = values.iter().map(|(variant, value)| quote!(Self::#variant => #value));
    let krate = super::runtime(krate);
    Ok(quote! {
        #[automatically_derived]
        impl #krate::LabelValue for #ident {
            const VALUES: &'static [&'static str] = &[#(#strings),*];

            #[inline]
            fn index(&self) -> usize {
                match self { #(#indices,)* }
            }

            #[inline]
            fn as_str(&self) -> &'static str {
                match self { #(#names,)* }
            }
        }
    })
}

/// `PascalCase` variant name in the given case, or `None` for an unknown rule.
fn convert(variant: &str, rule: &str) -> Option<String> {
    let words = words(variant);
    let joined = |separator: &str, upper: bool| {
        let words: Vec<String> =
            words.iter().map(|w| if upper { w.to_uppercase() } else { w.to_lowercase() }).collect();
        words.join(separator)
    };
    let capitalised = |word: &String| -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect::<String>())
            .unwrap_or_default()
    };
    Some(match rule {
        "snake_case" => joined("_", false),
        "kebab-case" => joined("-", false),
        "lowercase" => joined("", false),
        "UPPERCASE" => joined("", true),
        "SCREAMING_SNAKE_CASE" => joined("_", true),
        "PascalCase" => words.iter().map(capitalised).collect(),
        "camelCase" => {
            let pascal: String = words.iter().map(capitalised).collect();
            let mut chars = pascal.chars();
            chars.next().map(|c| c.to_lowercase().chain(chars).collect::<String>()).unwrap_or_default()
        }
        _ => return None,
    })
}

/// Splits `HttpsProxy2Fast` into `Https`, `Proxy2`, `Fast`; `APIKey` into `API`, `Key`.
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower_or_digit = i > 0 && chars.get(i - 1).is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
        if *c == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_uppercase() && !current.is_empty() && (prev_lower_or_digit || next_lower) {
            words.push(std::mem::take(&mut current));
        }
        current.push(*c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::convert;

    #[test]
    fn renames() {
        assert_eq!(convert("PaymentGateway", "snake_case").as_deref(), Some("payment_gateway"));
        assert_eq!(convert("APIKey", "snake_case").as_deref(), Some("api_key"));
        assert_eq!(convert("Usd", "UPPERCASE").as_deref(), Some("USD"));
        assert_eq!(convert("PaymentGateway", "kebab-case").as_deref(), Some("payment-gateway"));
        assert_eq!(convert("PaymentGateway", "camelCase").as_deref(), Some("paymentGateway"));
        assert_eq!(convert("Http2Proxy", "snake_case").as_deref(), Some("http2_proxy"));
        assert_eq!(convert("Usd", "Title Case"), None);
    }
}

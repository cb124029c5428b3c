//! `#[derive(LabelSet)]`: a struct whose fields are a metric's labels.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Type};

use super::{nested, string_value};
use crate::names::{self, Errors, unraw};

/// How a field's values are bounded.
enum Kind {
    /// A `LabelValue` (an enum, `bool`): values known at compile time.
    Enumerable,
    /// `&'static str`: values written in the program, not enumerable.
    Static,
    /// `#[label(unbounded)]`: anything; the cardinality guard applies.
    Unbounded,
}

struct Label {
    field: syn::Ident,
    ty: Type,
    name: String,
    kind: Kind,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let ident = &input.ident;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            ident,
            "#[derive(LabelSet)] goes on a struct with one named field per label: \
             `struct RevenueLabels { currency: Currency, product: Product }`",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &data.fields,
            "a label set has named fields: the field name is the label name",
        ));
    };
    if !input.generics.params.is_empty() {
        errors.add(
            &input.generics,
            "a label set cannot be generic; label values are `LabelValue` enums, `bool` or `&'static str`",
        );
    }
    if fields.named.is_empty() {
        errors.add(ident, "a label set needs at least one field; for a metric without labels write `Counter` (that is, `Counter<()>`)");
    }
    let mut krate: Option<syn::Path> = None;
    super::nested(&input.attrs, "label", &mut errors, |meta| {
        if meta.path.is_ident("crate") {
            krate = Some(super::crate_value(meta)?);
            Ok(())
        } else {
            Err(meta.error("on the struct, #[label(...)] takes `crate = path`"))
        }
    });
    let mut labels: Vec<Label> = Vec::new();
    for field in &fields.named {
        let Some(field_ident) = &field.ident else { continue };
        let mut name = (unraw(field_ident), None::<syn::LitStr>);
        let mut unbounded = false;
        nested(&field.attrs, "label", &mut errors, |meta| {
            if meta.path.is_ident("name") {
                let renamed = string_value(meta)?;
                name = (renamed.value(), Some(renamed));
                Ok(())
            } else if meta.path.is_ident("unbounded") {
                unbounded = true;
                Ok(())
            } else {
                Err(meta.error("#[label(...)] on a field takes `name = \"...\"` and `unbounded`"))
            }
        });
        let (name, literal) = name;
        let name_span = literal.as_ref().map_or_else(|| quote!(#field_ident), |l| quote!(#l));
        if !names::is_label_name(&name) {
            errors.add(
                &name_span,
                format!(
                    "`{name}` is not a Prometheus label name: use letters, digits and `_`, not starting with a digit"
                ),
            );
        } else if let Some(reason) = names::reserved_label(&name) {
            errors.add(
                &name_span,
                format!("`{name}` cannot be a label: {reason}; rename it with #[label(name = \"...\")]"),
            );
        } else if names::looks_unbounded(&name) && !unbounded {
            errors.add(
                &name_span,
                format!(
                    "a label named `{name}` usually has one value per user, request or address, which gives Prometheus \
                     one series each; drop it (put it in logs or an exemplar), or if it really is bounded or you accept \
                     the cardinality guard's limit, mark the field #[label(unbounded)]"
                ),
            );
        }
        if let Some(first) = labels.iter().find(|label| label.name == name) {
            errors.add(
                &name_span,
                format!(
                    "the label `{name}` is already field `{}`; give one of them #[label(name = \"...\")]",
                    first.field
                ),
            );
        }
        let kind = match classify(&field.ty) {
            _ if unbounded => Kind::Unbounded,
            Some(Kind::Unbounded) => {
                let ty = &field.ty;
                errors.add(
                    ty,
                    format!(
                        "`{}` has unbounded values: use a `LabelValue` enum, or opt in with #[label(unbounded)] on this \
                         field (the cardinality guard then caps its series)",
                        quote!(#ty).to_string().replace(' ', "")
                    ),
                );
                Kind::Unbounded
            }
            Some(kind) => kind,
            None => Kind::Enumerable,
        };
        labels.push(Label { field: field_ident.clone(), ty: field.ty.clone(), name, kind });
    }
    errors.finish()?;
    Ok(implementation(ident, &labels, &super::runtime(krate)))
}

/// The kind a field's type implies, when the type says so on its own;
/// `None` for a path type, which must then implement `LabelValue`.
fn classify(ty: &Type) -> Option<Kind> {
    match ty {
        Type::Reference(reference) => {
            let is_str = matches!(&*reference.elem, Type::Path(path) if path.path.is_ident("str"));
            let is_static = reference.lifetime.as_ref().is_some_and(|l| l.ident == "static");
            Some(if is_str && is_static { Kind::Static } else { Kind::Unbounded })
        }
        Type::Path(path) => {
            let last = path.path.segments.last()?.ident.to_string();
            const OPEN: &[&str] = &[
                "String", "str", "Cow", "Box", "Arc", "Rc", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16",
                "i32", "i64", "i128", "isize", "f32", "f64", "char",
            ];
            if last == "bool" {
                Some(Kind::Enumerable)
            } else if OPEN.contains(&last.as_str()) {
                Some(Kind::Unbounded)
            } else {
                None
            }
        }
        _ => Some(Kind::Unbounded),
    }
}

fn implementation(ident: &syn::Ident, labels: &[Label], krate: &TokenStream) -> TokenStream {
    let label_value = quote!(#krate::LabelValue);
    let option = quote!(::core::option::Option);
    let names = labels.iter().map(|label| &label.name);
    let enumerable: Vec<&Label> = labels.iter().filter(|label| matches!(label.kind, Kind::Enumerable)).collect();
    let statics: Vec<&Label> = labels.iter().filter(|label| matches!(label.kind, Kind::Static)).collect();
    let unbounded = labels.iter().any(|label| matches!(label.kind, Kind::Unbounded));
    let radix = |ty: &Type| quote_spanned!(ty.span()=> <#ty as #label_value>::CARDINALITY);

    // Mixed radix over the enumerable fields: index = ((i0 * C1) + i1) * C2 + i2 ...
    let factors = enumerable.iter().map(|label| radix(&label.ty));
    let product = quote! {{
        let mut total: #option<usize> = #option::Some(1);
        #( total = match total { #option::Some(n) => n.checked_mul(#factors), #option::None => #option::None }; )*
        total
    }};
    let cardinality = if statics.is_empty() && !unbounded { product.clone() } else { quote!(#option::None) };
    let max_static = quote!(#krate::labels::MAX_STATIC_FIELDS);
    let static_count = statics.len();
    let indexed = if unbounded {
        quote!(#option::None)
    } else {
        quote!(if #static_count <= #max_static { #product } else { #option::None })
    };
    let steps = enumerable.iter().map(|label| {
        let (field, ty) = (&label.field, &label.ty);
        let radix = radix(ty);
        quote! { index = index.wrapping_mul(#radix).wrapping_add(<#ty as #label_value>::index(&self.#field)); }
    });
    let static_values = statics.iter().enumerate().map(|(i, label)| {
        let field = &label.field;
        quote! { if let ::core::option::Option::Some(slot) = values.get_mut(#i) { *slot = self.#field; } }
    });
    let locals: Vec<syn::Ident> = (0..labels.len()).map(|i| format_ident!("__mesh_value_{}", i)).collect();
    let decode = labels.iter().zip(&locals).rev().filter(|(label, _)| matches!(label.kind, Kind::Enumerable)).map(
        |(label, local)| {
            let ty = &label.ty;
            let radix = radix(ty);
            quote! {
                let #local: &'static str = rest
                    .checked_rem(#radix)
                    .and_then(|i| <#ty as #label_value>::VALUES.get(i))
                    .copied()
                    .unwrap_or_default();
                rest = rest.checked_div(#radix).unwrap_or_default();
            }
        },
    );
    let mut static_index = 0usize;
    let fill_statics =
        labels.iter().zip(&locals).filter(|(label, _)| !matches!(label.kind, Kind::Enumerable)).map(|(_, local)| {
            let i = static_index;
            static_index += 1;
            quote! { let #local: &'static str = statics.get(#i).copied().unwrap_or_default(); }
        });
    let values_at = if unbounded {
        quote! { let _ = (index, statics); ::std::vec::Vec::new() }
    } else {
        quote! { let mut rest = index; #(#decode)* #(#fill_statics)* ::std::vec![#(#locals),*] }
    };

    let values = labels.iter().zip(&locals).map(|(label, local)| {
        let (field, ty) = (&label.field, &label.ty);
        match label.kind {
            Kind::Enumerable => {
                quote_spanned! {ty.span()=> let #local: &str = <#ty as #label_value>::as_str(&self.#field); }
            }
            Kind::Static => quote! { let #local: &str = self.#field; },
            Kind::Unbounded => quote_spanned! {ty.span()=>
                let #local = #krate::labels::UnboundedLabel::label_value(&self.#field);
                let #local: &str = &#local;
            },
        }
    });

    quote! {
        #[automatically_derived]
        impl #krate::LabelSet for #ident {
            const NAMES: &'static [&'static str] = &[#(#names),*];
            const CARDINALITY: #option<usize> = #cardinality;
            const INDEXED: #option<usize> = #indexed;
            const UNBOUNDED: bool = #unbounded;
            const STATIC_FIELDS: usize = #static_count;

            #[inline]
            #[allow(unused_mut)]
            fn index(&self) -> usize {
                let mut index = 0usize;
                #(#steps)*
                index
            }

            #[inline]
            fn statics(&self) -> #krate::labels::StaticValues {
                #[allow(unused_mut)]
                let mut values: #krate::labels::StaticValues = [""; #max_static];
                #(#static_values)*
                values
            }

            #[allow(unused_mut, unused_variables)]
            fn values_at(index: usize, statics: &#krate::labels::StaticValues) -> ::std::vec::Vec<&'static str> {
                #values_at
            }

            fn with_values<__MeshR>(&self, f: impl ::core::ops::FnOnce(&[&str]) -> __MeshR) -> __MeshR {
                #(#values)*
                f(&[#(#locals),*])
            }
        }
    }
}

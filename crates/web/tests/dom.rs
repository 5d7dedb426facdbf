//! The DOM layer in real headless Chromium: run with `cargo xtask test`.
#![cfg(target_arch = "wasm32")]

use ringsource_web::{replace_numbers, watch_numbers};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement};

wasm_bindgen_test_configure!(run_in_browser);

const ORIGINAL: &str = "+74951234567";
const TRACKING: &str = "+74959876543";

fn fixture(html: &str) -> HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let root: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    root.set_inner_html(html);
    document.body().unwrap().append_child(&root).unwrap();
    root
}

fn swap(html: &str) -> (HtmlElement, u32) {
    let root = fixture(html);
    let n = replace_numbers(&root, vec![ORIGINAL.into()], TRACKING).unwrap();
    (root, n)
}

#[wasm_bindgen_test]
fn plain_text_keeps_its_format() {
    let (root, n) = swap("<p>Call +7 (495) 123-45-67 or 8 495 123 45 67 today</p>");
    assert_eq!(n, 2);
    assert_eq!(root.inner_html(), "<p>Call +7 (495) 987-65-43 or 8 495 987 65 43 today</p>");
}

#[wasm_bindgen_test]
fn number_split_across_inline_elements() {
    let (root, n) = swap(r#"<p><span class="code">+7 (495)</span> <b>123</b>-<i>45-67</i></p>"#);
    assert_eq!(n, 1);
    assert_eq!(root.inner_html(), r#"<p><span class="code">+7 (495)</span> <b>987</b>-<i>65-43</i></p>"#);
}

#[wasm_bindgen_test]
fn block_boundary_is_not_glued_into_a_number() {
    // "8 495" and "123 45 67" on separate lines are not one number.
    let html = "<div>8 495</div><div>123 45 67</div>";
    let (root, n) = swap(html);
    assert_eq!(n, 0);
    assert_eq!(root.inner_html(), html);
}

#[wasm_bindgen_test]
fn tel_callto_and_sms_links() {
    let (root, n) = swap(
        r#"<a href="tel:+74951234567">call</a><a href="callto:84951234567">skype</a><a href="sms:+7-495-123-45-67?body=hi">sms</a><a href="mailto:a@b.c">mail</a>"#,
    );
    assert_eq!(n, 3);
    let links = root.query_selector_all("a").unwrap();
    let href = |i| links.item(i).unwrap().unchecked_into::<Element>().get_attribute("href").unwrap();
    assert_eq!(href(0), "tel:+74959876543");
    assert!(href(1).starts_with("callto:") && href(1).contains("84959876543"), "{}", href(1));
    assert!(href(2).starts_with("sms:") && href(2).ends_with("?body=hi"), "{}", href(2));
    assert_eq!(href(3), "mailto:a@b.c");
}

#[wasm_bindgen_test]
fn untouchable_elements_stay_as_they_are() {
    let html = concat!(
        r#"<script type="application/ld+json">{"telephone":"+7 495 123-45-67"}</script>"#,
        "<script>var phone = '+7 495 123-45-67';</script>",
        "<style>/* +7 495 123-45-67 */</style>",
        "<textarea>+7 495 123-45-67</textarea>",
        r#"<input value="+7 495 123-45-67">"#,
        "<select><option>+7 495 123-45-67</option></select>",
        r#"<div contenteditable="true">+7 495 123-45-67</div>"#,
        r#"<div data-ringsource-skip=""><p>+7 495 123-45-67</p><a href="tel:+74951234567">x</a></div>"#,
    );
    let (root, n) = swap(html);
    assert_eq!(n, 0);
    assert_eq!(root.inner_html(), html);
}

#[wasm_bindgen_test]
fn distractors_are_left_alone() {
    let html = "<p>Order 749512345678, INN 774951234567, price 1 495 123 ₽, 12.03.2024</p>";
    let (root, n) = swap(html);
    assert_eq!(n, 0);
    assert_eq!(root.inner_html(), html);
}

#[wasm_bindgen_test]
fn blocks_inside_blocks_and_digits_across_nodes() {
    // Text of the outer block on both sides of an inner one: three runs.
    let html = "<div>8 495 123-45-67<p>+7 495 123 45 67</p>и 8 (495) 123-45-67</div>";
    let (root, n) = swap(html);
    assert_eq!(n, 3);
    assert_eq!(root.inner_html(), "<div>8 495 987-65-43<p>+7 495 987 65 43</p>и 8 (495) 987-65-43</div>");
    // A digit in the next node of the same run still glues on; one in the
    // same node is seen without walking; one in the next block does not.
    let html = "<p>8 495 123-45-67<b>8</b></p><p>Item 74951234567890</p><p>84951234567</p><p>9</p>";
    let (root, n) = swap(html);
    assert_eq!(n, 1);
    assert_eq!(root.inner_html(), "<p>8 495 123-45-67<b>8</b></p><p>Item 74951234567890</p><p>84959876543</p><p>9</p>");
}

#[wasm_bindgen_test]
fn roots_other_than_an_element() {
    let document = web_sys::window().unwrap().document().unwrap();
    // A text node alone has no run around it to read: it is left as it is.
    let text = document.create_text_node("Call 8 495 123-45-67");
    assert_eq!(replace_numbers(&text, vec![ORIGINAL.into()], TRACKING).unwrap(), 0);
    assert_eq!(text.data(), "Call 8 495 123-45-67");
    // A fragment, here a template's content (not in any page).
    let template = document.create_element("template").unwrap();
    template.set_inner_html(r#"<p><a href="tel:84951234567">8 495 123-45-67</a></p>"#);
    let content: web_sys::Node = js_sys::Reflect::get(&template, &"content".into()).unwrap().unchecked_into();
    assert_eq!(replace_numbers(&content, vec![ORIGINAL.into()], TRACKING).unwrap(), 2);
    assert_eq!(template.inner_html(), r#"<p><a href="tel:84959876543">8 495 987-65-43</a></p>"#);
    // A whole document of its own (through its body), and a link as the root.
    let parser = web_sys::DomParser::new().unwrap();
    let other = parser
        .parse_from_string(
            "<p>+7 (495) 123-45-67</p><a href=\"tel:+74951234567\">x</a>",
            web_sys::SupportedType::TextHtml,
        )
        .unwrap();
    assert_eq!(replace_numbers(&other, vec![ORIGINAL.into()], TRACKING).unwrap(), 2);
    let body = other.body().unwrap();
    assert_eq!(body.inner_html(), r#"<p>+7 (495) 987-65-43</p><a href="tel:+74959876543">x</a>"#);
    let link = body.query_selector("a").unwrap().unwrap();
    link.set_attribute("href", "callto:84951234567").unwrap();
    assert_eq!(replace_numbers(&link, vec![ORIGINAL.into()], TRACKING).unwrap(), 1);
    assert_eq!(link.get_attribute("href").unwrap(), "callto:84959876543");
}

#[wasm_bindgen_test]
fn bad_numbers_are_reported_and_nothing_changes() {
    let html = "<p>+7 495 123-45-67</p>";
    let root = fixture(html);
    let err = replace_numbers(&root, vec!["not a number".into()], TRACKING).unwrap_err();
    let message = err.unchecked_into::<js_sys::Error>().message();
    assert!(String::from(message).contains("not a number"));
    assert!(replace_numbers(&root, vec![ORIGINAL.into()], "12").is_err());
    assert_eq!(root.inner_html(), html);
}

async fn next_tick() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen_test]
async fn content_added_later_is_swapped_by_the_observer() {
    let root = fixture("<header>+7 (495) 123-45-67</header>");
    let stop = watch_numbers(&root, vec![ORIGINAL.into()], TRACKING).unwrap();
    assert_eq!(root.inner_html(), "<header>+7 (495) 987-65-43</header>");

    let popup = web_sys::window().unwrap().document().unwrap().create_element("div").unwrap();
    popup.set_inner_html(r#"<a href="tel:84951234567">8 (495) <span>123-45-67</span></a>"#);
    root.append_child(&popup).unwrap();
    next_tick().await;
    assert_eq!(popup.inner_html(), r#"<a href="tel:84959876543">8 (495) <span>987-65-43</span></a>"#);

    // Text rewritten in place by a framework is caught too.
    let header = root.query_selector("header").unwrap().unwrap();
    header.first_child().unwrap().set_node_value(Some("Now: 8 495 123 45 67"));
    next_tick().await;
    assert_eq!(header.text_content().unwrap(), "Now: 8 495 987 65 43");

    // After stop(), nothing is swapped any more.
    stop.call0(&JsValue::NULL).unwrap();
    let late = web_sys::window().unwrap().document().unwrap().create_element("p").unwrap();
    late.set_text_content(Some("+7 495 123-45-67"));
    root.append_child(&late).unwrap();
    next_tick().await;
    assert_eq!(late.text_content().unwrap(), "+7 495 123-45-67");
}

#[wasm_bindgen_test]
fn classify_reads_utm_and_click_ids() {
    let touch = ringsource_web::classify(
        "https://shop.example/landing?utm_source=google&utm_medium=cpc&utm_campaign=sofas&utm_term=buy+sofa&gclid=abc",
        "https://www.google.com/",
    )
    .unwrap();
    let get = |k: &str| js_sys::Reflect::get(&touch, &k.into()).unwrap();
    assert_eq!(get("source").as_string().as_deref(), Some("google"));
    assert_eq!(get("medium").as_string().as_deref(), Some("cpc"));
    assert_eq!(get("campaign").as_string().as_deref(), Some("sofas"));
    assert_eq!(get("term").as_string().as_deref(), Some("buy sofa"));
    assert!(ringsource_web::classify("not a url", "").is_err());
}

//! The fake's answers in the AWS Query protocol's XML, written with `quick-xml` (escaping
//! included): `<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>` for a
//! success, `<ErrorResponse><Error>` (HTTP 400, `Type` Sender) for a refusal, as the
//! awsQuery protocol tests of Smithy shape them, with the element names of the service
//! model that ships with botocore (`elasticbeanstalk/2010-12-01/service-2.json`).

use std::sync::atomic::{AtomicU64, Ordering};

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

pub const NAMESPACE: &str = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/";

/// How the answer reaches the client, when it does not the normal way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Carried out, answered this late (past the client's attempt timeout).
    Late(std::time::Duration),
    /// Carried out, then the connection is cut without an answer.
    Cut,
}

/// One answer of the fake.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub request_id: String,
    pub loss: Option<Loss>,
}

/// An XML document being written.
pub struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn new() -> Xml {
        Xml(Writer::new(Vec::new()))
    }

    fn write(&mut self, event: Event<'_>) {
        self.0.write_event(event).expect("writing XML to memory does not fail");
    }

    /// `<name>text</name>`, the text escaped.
    pub fn el(&mut self, name: &str, text: &str) -> &mut Xml {
        self.write(Event::Start(BytesStart::new(name)));
        self.write(Event::Text(BytesText::new(text)));
        self.write(Event::End(BytesEnd::new(name)));
        self
    }

    /// Text inside the element being written (a list of strings' member).
    pub fn write_text(&mut self, text: &str) -> &mut Xml {
        self.write(Event::Text(BytesText::new(text)));
        self
    }

    /// `<name>text</name>` when there is a text.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Xml {
        if let Some(text) = text {
            self.el(name, text);
        }
        self
    }

    /// `<name>…</name>`, its content written by `inner`.
    pub fn node(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) -> &mut Xml {
        self.write(Event::Start(BytesStart::new(name)));
        inner(self);
        self.write(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name><member>…</member>…</name>`: a list of the Query protocol.
    pub fn list<T>(&mut self, name: &str, items: &[T], member: impl Fn(&mut Xml, &T)) -> &mut Xml {
        self.node(name, |xml| {
            for item in items {
                xml.node("member", |xml| member(xml, item));
            }
        })
    }

    fn text(self) -> String {
        String::from_utf8(self.0.into_inner()).expect("XML of UTF-8 text is UTF-8")
    }
}

/// A request ID in the form AWS uses (a UUID).
pub fn request_id() -> String {
    static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);
    let n = REQUEST_IDS.fetch_add(1, Ordering::SeqCst);
    format!("5f3c1b2a-0000-4000-8000-{:012x}", (u64::from(std::process::id()) << 20) + n)
}

/// A success answer of `action`, its result written by `result`.
pub fn ok(action: &str, result: impl FnOnce(&mut Xml)) -> Answer {
    answer(action, &request_id(), result)
}

/// A success answer carrying `request` as its RequestId (the one its events carry).
pub fn answer(action: &str, request: &str, result: impl FnOnce(&mut Xml)) -> Answer {
    let mut xml = Xml::new();
    let mut response = BytesStart::new(format!("{action}Response"));
    response.push_attribute(("xmlns", NAMESPACE));
    xml.write(Event::Start(response));
    xml.node(&format!("{action}Result"), result);
    xml.node("ResponseMetadata", |xml| {
        xml.el("RequestId", request);
    });
    xml.write(Event::End(BytesEnd::new(format!("{action}Response"))));
    Answer { status: 200, body: xml.text(), request_id: request.to_owned(), loss: None }
}

/// A client error of the Query protocol.
pub fn error(code: &str, message: &str) -> Answer {
    let request = request_id();
    let mut xml = Xml::new();
    let mut response = BytesStart::new("ErrorResponse");
    response.push_attribute(("xmlns", NAMESPACE));
    xml.write(Event::Start(response));
    xml.node("Error", |xml| {
        xml.el("Type", "Sender").el("Code", code).el("Message", message);
    });
    xml.el("RequestId", &request);
    xml.write(Event::End(BytesEnd::new("ErrorResponse")));
    Answer { status: 400, body: xml.text(), request_id: request, loss: None }
}

#[test]
fn answers_escape_their_text() {
    let refused = error("InvalidParameterValue", "Value <a&b> is bad");
    assert!(refused.body.contains("<Message>Value &lt;a&amp;b&gt; is bad</Message>"));
    let listed = ok("DescribeThings", |xml| {
        xml.list("Things", &["x", "y"], |xml, t| {
            xml.el("Name", t);
        });
    });
    assert!(listed.body.contains(
        "<DescribeThingsResult><Things><member><Name>x</Name></member><member><Name>y</Name>\
         </member></Things></DescribeThingsResult>"
    ));
}

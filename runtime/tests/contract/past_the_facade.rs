// Generated code once called an internal function of the HTTP sink; it is reachable only
// through the facade now.
fn main() {
    let mut url = String::new();
    pulse_runtime::api_sink::push_url_encoded(&mut url, "a b");
}

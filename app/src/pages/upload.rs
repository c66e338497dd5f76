//! The drag-and-drop uploader of the case page: files dropped on the zone
//! (or chosen and sent with the form) go up one request per file, each with
//! its own progress bar, and each file's outcome — stored with its view and
//! warnings, or refused with the reason — stays on screen. When every file
//! was stored the page reloads to show them. Without JavaScript the form
//! is a plain multipart post.

use crate::i18n::t;
use leptos::prelude::*;

/// One file's upload in the list under the drop zone.
#[derive(Debug, Clone)]
struct Upload {
    name: String,
    /// 0–100.
    progress: RwSignal<f64>,
    /// None while going; Some((stored, text)) when done.
    outcome: RwSignal<Option<(bool, String)>>,
}

/// The drop zone and per-file progress list of the case page's upload
/// form (`#upload-form`, which stays a plain form without JavaScript).
#[component]
pub fn Uploader(case_id: i64) -> impl IntoView {
    let uploads: RwSignal<Vec<Upload>> = RwSignal::new(Vec::new());
    let over = RwSignal::new(false);
    let all_done = move || {
        let u = uploads.get();
        !u.is_empty() && u.iter().all(|u| u.outcome.get().is_some())
    };
    #[cfg(feature = "hydrate")]
    let start = move |files: Vec<web_sys::File>| {
        let view = browser::selected_view();
        let batch: Vec<(web_sys::File, Upload)> = files
            .into_iter()
            .map(|f| {
                let u = Upload {
                    name: f.name(),
                    progress: RwSignal::new(0.0),
                    outcome: RwSignal::new(None),
                };
                (f, u)
            })
            .collect();
        uploads.update(|list| list.extend(batch.iter().map(|(_, u)| u.clone())));
        leptos::task::spawn_local(async move {
            let mut all_stored = true;
            for (file, u) in batch {
                let (stored, text) = browser::upload(case_id, &file, &view, u.progress).await;
                all_stored &= stored;
                u.outcome.set(Some((stored, text)));
            }
            if all_stored {
                browser::reload();
            }
        });
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        over.set(false);
        #[cfg(feature = "hydrate")]
        start(browser::dropped_files(&ev));
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            let files = browser::chosen_files();
            if !files.is_empty() {
                ev.prevent_default();
                start(files);
            }
        }
    };
    view! {
        <form method="post" action=format!("/cases/{case_id}/images") enctype="multipart/form-data" class="grid" id="upload-form"
            on:submit=on_submit>
            <div id="drop-zone" class=move || if over.get() { "drop-zone over" } else { "drop-zone" }
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); over.set(true); }
                on:dragleave=move |_| over.set(false)
                on:drop=on_drop>
                {t("upload.drop")}
            </div>
            <label>{t("images.files")}<input type="file" name="file" id="f-files" multiple accept=".dcm,application/dicom" required/></label>
            <label>{t("images.view")}
                <select name="view" id="f-view">
                    <option value="auto">{t("images.view_auto")}</option>
                    <option value="frontal">{t("opt.frontal")}</option>
                    <option value="lateral">{t("opt.lateral")}</option>
                    <option value="oblique">{t("opt.oblique")}</option>
                </select>
            </label>
            <button type="submit" id="upload">{t("images.upload")}</button>
        </form>
        <ul id="upload-progress">
            {move || uploads.get().into_iter().map(|u| {
                let state = move || match u.outcome.get() {
                    None => "uploading",
                    Some((true, _)) => "stored",
                    Some((false, _)) => "refused",
                };
                view! {
                    <li class="upload" data-state=state>
                        <span class="name">{u.name.clone()}</span>
                        <progress max="100" value=move || format!("{:.0}", u.progress.get())></progress>
                        <span class="outcome">{move || u.outcome.get().map(|(ok, text)| format!("{} {text}", if ok { "✓" } else { "✗" }))}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
        {move || all_done().then(|| view! {
            <p><a href=format!("/cases/{case_id}#images") id="upload-refresh" on:click=move |_| {
                #[cfg(feature = "hydrate")]
                browser::reload();
            }>{t("upload.refresh")}</a></p>
        })}
    }
}

/// The browser side: the dropped or chosen files, and sending one file
/// with its progress.
#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    pub fn reload() {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    }

    fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
        let Some(list) = list else { return Vec::new() };
        (0..list.length()).filter_map(|i| list.get(i)).collect()
    }

    pub fn dropped_files(ev: &web_sys::DragEvent) -> Vec<web_sys::File> {
        files_of(ev.data_transfer().and_then(|d| d.files()))
    }

    fn element<T: JsCast>(id: &str) -> Option<T> {
        web_sys::window()?
            .document()?
            .get_element_by_id(id)?
            .dyn_into::<T>()
            .ok()
    }

    pub fn chosen_files() -> Vec<web_sys::File> {
        files_of(element::<web_sys::HtmlInputElement>("f-files").and_then(|i| i.files()))
    }

    pub fn selected_view() -> String {
        element::<web_sys::HtmlSelectElement>("f-view")
            .map(|s| s.value())
            .unwrap_or_else(|| "auto".into())
    }

    /// Sends one file as the form does, with progress; the outcome line.
    pub async fn upload(
        case_id: i64,
        file: &web_sys::File,
        view: &str,
        progress: RwSignal<f64>,
    ) -> (bool, String) {
        match send(case_id, file, view, progress).await {
            Ok(outcome) => outcome,
            Err(e) => (false, e),
        }
    }

    async fn send(
        case_id: i64,
        file: &web_sys::File,
        view: &str,
        progress: RwSignal<f64>,
    ) -> Result<(bool, String), String> {
        let js = |e: JsValue| e.as_string().unwrap_or_else(|| format!("{e:?}"));
        let form = web_sys::FormData::new().map_err(js)?;
        form.append_with_str("view", view).map_err(js)?;
        form.append_with_blob_and_filename("file", file, &file.name())
            .map_err(js)?;
        let xhr = web_sys::XmlHttpRequest::new().map_err(js)?;
        xhr.open("POST", &format!("/cases/{case_id}/images"))
            .map_err(js)?;
        xhr.set_request_header("Accept", "application/json")
            .map_err(js)?;
        let on_progress =
            Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                if e.length_computable() && e.total() > 0.0 {
                    progress.set(100.0 * e.loaded() / e.total());
                }
            });
        xhr.upload()
            .map_err(js)?
            .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        let done = js_sys::Promise::new(&mut |resolve, _reject| {
            xhr.set_onloadend(Some(&resolve));
        });
        xhr.send_with_opt_form_data(Some(&form)).map_err(js)?;
        let _ = JsFuture::from(done).await;
        drop(on_progress);
        progress.set(100.0);
        let status = xhr.status().unwrap_or(0);
        let body = xhr.response_text().ok().flatten().unwrap_or_default();
        if status == 0 {
            return Err(crate::i18n::t("upload.network"));
        }
        let parsed = js_sys::JSON::parse(&body).unwrap_or(JsValue::NULL);
        let files = js_sys::Reflect::get(&parsed, &JsValue::from_str("files"))
            .unwrap_or(JsValue::UNDEFINED);
        let first =
            js_sys::Reflect::get(&files, &JsValue::from_f64(0.0)).unwrap_or(JsValue::UNDEFINED);
        let text = |v: &JsValue, k: &str| {
            js_sys::Reflect::get(v, &JsValue::from_str(k))
                .ok()
                .and_then(|v| v.as_string())
        };
        if first.is_undefined() {
            let message = text(&parsed, "message").unwrap_or_else(|| format!("HTTP {status}"));
            return Ok((false, message));
        }
        let stored = js_sys::Reflect::get(&first, &JsValue::from_str("stored"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !stored {
            return Ok((
                false,
                text(&first, "error").unwrap_or_else(|| format!("HTTP {status}")),
            ));
        }
        let mut line = text(&first, "view").unwrap_or_default();
        let warnings = js_sys::Reflect::get(&first, &JsValue::from_str("warnings"))
            .ok()
            .map(|w| js_sys::Array::from(&w))
            .map(|a| a.iter().filter_map(|v| v.as_string()).collect::<Vec<_>>())
            .unwrap_or_default();
        if !warnings.is_empty() {
            line.push_str(" — ");
            line.push_str(&warnings.join("; "));
        }
        Ok((true, line))
    }
}

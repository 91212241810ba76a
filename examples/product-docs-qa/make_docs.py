#!/usr/bin/env python3
"""Generate docs/ and qa.jsonl: the documentation of Tarnwick, a fictional product, and questions on it.

Tarnwick is an invented field-service and parts-inventory SaaS for HVAC, refrigeration and lift
maintenance companies: dispatchers schedule work orders, technicians work from the Tarnwick Crew
mobile app, storekeepers track parts in warehouses and vans, and the office quotes and invoices.
Every plan, price, limit, error code, endpoint, version and date here is made up, so no language
model has seen them: a question can only be answered by reading the page that states the fact.
That is the point of the example: it shows retrieval (RAG) beating plain prompting.

How it is built
  * Each page is written in a small Markdown-like source (## headings, paragraphs, "- " and "1. "
    lists, "|" tables, **bold**, `code`) and rendered to Markdown, HTML or plain text by its file
    suffix. HTML pages share one <script> in the head, one <nav> and one <footer>, which an
    ingester has to strip.
  * A fact is written once, inline, as [[answer|question|another phrasing]]. Rendering replaces
    the marker by the answer, so the answer is the page's own words, and records one phrasing of
    the question (picked by random.Random(SEED)) with that page as its gold source. Release notes
    add their questions (which version, which date) directly.
  * Families of look-alike pages (features, plans, integrations, error codes, release notes) come
    from the tables below through shared templates, so each feature has its own trash period, each
    plan its own storage, each integration its own sync interval: retrieval has to find the right
    page, not just any page about trash periods. One-off pages (getting started, API, admin, FAQ,
    support) are written in page_sources.txt in the same source language. Each fact is stated on
    one page only; equal values (say "30 days") recur on other pages as other facts.
  * The last step checks everything (every answer verbatim and whole-word in its page, 150-900
    words a page, at least 3 questions a page, no duplicate question, formats and counts) and
    exits non-zero on any failure, before anything is written.

Standard library only, deterministic: running it twice gives byte-identical files.

    python3 make_docs.py      # rewrites docs/ and qa.jsonl next to this script, prints counts
"""

from __future__ import annotations

import html
import json
import random
import re
import shutil
from pathlib import Path

SEED = 11
HERE = Path(__file__).resolve().parent
rng = random.Random(SEED)
F = dict  # one row of a table

# --------------------------------------------------------------------------------------- features
FEATURES = [
    F(slug="work-orders", name="Work Orders", ext="md", plan="Sprout", things="work orders",
      intro="A work order is the record of one job at one customer site: what has to be done, who does it, which "
            "parts were used and what the customer signed off.",
      menu="Settings > Work Orders > Numbering", setting="Number prefix", default="JOB-",
      purpose="sets the text printed in front of every work order number",
      limit="Each work order holds up to [[37|How many files can be attached to one Tarnwick work order?|What is "
            "the maximum number of attachments on a single Tarnwick work order?]] attachments (photos, PDFs and "
            "signed forms together).",
      trash=("45 days", "deleted work orders"), key=("Shift+N", "create a new work order"),
      extra=[("Statuses", "A work order moves through six statuses: Draft, Booked, Rolling, On Site, "
              "[[Parts Hold|Which status does a Tarnwick work order get while the technician waits for a "
              "part?]] and Signed Off. A technician who cannot finish because a part is missing sets Parts "
              "Hold, which keeps the job on the customer's timeline without counting it as late."),
             ("Customer sign-off", "When the technician taps Finish, the customer signs on the device. If "
              "nobody signs, the order is closed automatically after [[5 days|How long after the technician "
              "finishes is an unsigned Tarnwick work order closed automatically?]] and tagged Unsigned.")]),
    F(slug="route-planner", name="Route Planner", ext="md", plan="Forge", things="routes",
      intro="The Route Planner orders each technician's visits for the day and draws the route on the dispatch "
            "map. It reads time windows, technician skills and van stock before it proposes an order.",
      menu="Dispatch > Route Planner > Preferences", setting="Optimisation goal",
      default="Fewest kilometres", purpose="decides what the planner tries to minimise",
      limit="A single route can hold at most [[48|How many stops can one route contain in the Tarnwick Route "
            "Planner?]] stops; longer days have to be split between two technicians.",
      trash=("90 days", "deleted route plans"), key=("Alt+R", "re-optimise the selected route"),
      extra=[("Re-planning during the day", "When a visit runs long, the planner proposes a new order once "
              "the overrun passes the **Overrun threshold**, which is [[25 minutes|How long must a visit run "
              "over before the Tarnwick Route Planner proposes a new route?]] unless you change it."),
             ("Traffic and exports", "Live traffic is refreshed every [[6 minutes|How often does the Tarnwick "
              "Route Planner refresh live traffic data?]]. A planned route can be exported as [[GPX and KML|"
              "Which file formats can a Tarnwick Route Planner route be exported to?]] for in-van satnavs.")]),
    F(slug="inventory", name="Stock and Inventory", ext="md", plan="Forge", things="stock items",
      intro="Inventory tracks parts across warehouses, vans and bins, and reserves stock for booked work orders so "
            "that technicians do not drive out without the parts they need.",
      menu="Inventory > Settings > Valuation", setting="Valuation method", default="Rolling average",
      purpose="decides how the value of stock on hand is calculated",
      limit="One warehouse can be divided into at most [[2,500|How many bins can a single warehouse have in "
            "Tarnwick Inventory?]] bins. Vans count as warehouses with a single bin.",
      trash=("60 days", "deleted stock items"), key=("G then I", "jump to Inventory"),
      extra=[("Barcodes", "The scanner in the Tarnwick Crew app reads [[Code 128, QR and EAN-13|Which barcode "
              "types can the Tarnwick Crew scanner read?]] barcodes, from the phone camera or a paired "
              "Bluetooth scanner."),
             ("Van stock counts", "Technicians are asked to count the stock in their van every [[10 days|How "
              "often does Tarnwick ask technicians to count their van stock?]]. A count that differs by "
              "more than the tolerance creates an adjustment for a storekeeper to approve.")]),
    F(slug="purchase-orders", name="Purchase Orders", ext="md", plan="Depot", things="purchase orders",
      intro="Purchase orders let storekeepers buy parts from suppliers, receive them into a warehouse or straight "
            "onto a van, and match supplier invoices against what actually arrived.",
      menu="Inventory > Purchasing > Approval rules", setting="Approval threshold", default="$1,500",
      purpose="sets the order value above which a purchase order needs a second approver",
      limit="A purchase order can list up to [[120|How many lines can one Tarnwick purchase order have?]] lines. "
            "Split larger orders by supplier delivery date.",
      trash=("30 days", "deleted purchase orders"), key=("Shift+P", "start a new purchase order"),
      extra=[("Sending orders to suppliers", "Orders are e-mailed to suppliers as [[PDF and UBL|In which "
              "formats does Tarnwick send purchase orders to suppliers?]] files. The supplier confirmation "
              "link in that e-mail stays valid for [[10 days|How long does the supplier link in a Tarnwick "
              "purchase order e-mail stay valid?]]."),
             ("Numbering", "Numbers follow the pattern [[PO-YYYY-NNNNN|What numbering pattern do Tarnwick "
              "purchase orders use?]], restarting at 00001 every calendar year.")]),
    F(slug="timesheets", name="Timesheets", ext="md", plan="Sprout", things="timesheets",
      intro="Timesheets collect the hours technicians clock in the Tarnwick Crew app, split them into travel, "
            "labour and break time, and pass approved hours on to payroll.",
      menu="Team > Timesheets > Rules", setting="Rounding increment", default="6 minutes",
      purpose="controls how clocked minutes are rounded when a timesheet is approved",
      limit="A technician can record up to [[40|How many clock events can a technician record per day in Tarnwick "
            "Timesheets?]] clock events a day; anything beyond that is rejected as a probable double tap.",
      trash=("21 days", "deleted timesheet entries"), key=("Shift+A", "approve the selected timesheet"),
      extra=[("Clock-in geofence", "Technicians can clock in only within [[180 metres|How close to the site "
              "must a technician be to clock in with Tarnwick Timesheets?]] of the site address. Outside "
              "that radius the app asks for a reason, which the approver sees."),
             ("Long shifts", "Any shift longer than [[13 hours|After how many hours does Tarnwick flag a "
              "shift as a long shift?]] is flagged for review and cannot be approved in bulk.")]),
    F(slug="customer-portal", name="Customer Portal", ext="html", plan="Depot", things="portal users",
      intro="The Customer Portal gives your customers a branded website where they book visits, follow the "
            "technician on the way, approve quotes and pay invoices.",
      menu="Settings > Customer Portal > Branding", setting="Magic link lifetime", default="20 minutes",
      purpose="sets how long a sign-in link e-mailed to a customer stays valid",
      limit="Each customer account can have up to [[25|How many portal users can one customer account have in the "
            "Tarnwick Customer Portal?]] portal users.",
      trash=("120 days", "deleted portal messages"), key=None,
      extra=[("Custom domain", "To serve the portal from your own domain, create a CNAME record pointing to "
              "[[portal.tarnwick-edge.net|Which host name must the CNAME record point to when the Tarnwick "
              "Customer Portal runs on a custom domain?]]. The certificate is issued automatically."),
             ("Photos from customers", "Customers can attach photos in [[JPEG, PNG and HEIC|Which photo "
              "formats can customers upload in the Tarnwick Customer Portal?]] format when they book a "
              "visit, which helps the dispatcher send the right technician.")]),
    F(slug="quotes", name="Quotes", ext="md", plan="Forge", things="quotes",
      intro="Quotes let office staff and technicians price a job before it is booked. A customer who accepts a "
            "quote online turns it into a work order without anyone retyping it.",
      menu="Sales > Quotes > Defaults", setting="Quote validity", default="28 days",
      purpose="sets how long a sent quote can still be accepted",
      limit="A quote can offer up to [[4|How many priced options can a single Tarnwick quote offer?]] priced "
            "options, for example repair, replace and replace with a service contract.",
      trash=("40 days", "deleted quotes"), key=("Shift+Q", "create a new quote"),
      extra=[("Signatures", "Accepted quotes are signed with [[Tarnwick Sign|What is the name of the "
              "e-signature tool built into Tarnwick Quotes?]], which stores the signer's name, time and "
              "IP address with the PDF."),
             ("Reminders", "If the customer has not opened a quote, a reminder is sent after [[4 days|After "
              "how many days does Tarnwick send a reminder for an unopened quote?]]. Only one reminder is "
              "sent per quote.")]),
    F(slug="invoicing", name="Invoicing", ext="md", plan="Sprout", things="invoices",
      intro="Invoicing turns signed-off work orders and accepted quotes into invoices, sends them, and records "
            "payments, part payments and credit notes.",
      menu="Finance > Invoicing > Preferences", setting="Payment terms", default="Net 21",
      purpose="sets the due date printed on new invoices",
      limit="An invoice can carry up to [[250|How many line items can one Tarnwick invoice have?]] line items; "
            "longer jobs are usually summarised by labour, parts and call-out.",
      trash=("84 days", "deleted invoice drafts"), key=("Shift+I", "create a new invoice"),
      extra=[("E-invoicing", "Besides PDF, invoices can be issued as [[UBL 2.1 and Factur-X|Which e-invoicing "
              "formats can Tarnwick Invoicing produce besides PDF?]] files for customers who require "
              "structured invoices."),
             ("Late fees", "Late fees are capped at [[3.5%|What is the highest monthly late fee Tarnwick "
              "Invoicing lets you charge on an overdue invoice?]] of the invoice total per month.")]),
    F(slug="asset-registry", name="Asset Registry", ext="md", plan="Depot", things="assets",
      intro="The Asset Registry records every piece of equipment you maintain at customer sites, such as boilers, "
            "chillers, lifts and cold rooms, with its service history and meter readings.",
      menu="Assets > Registry > Maintenance plans", setting="Service interval", default="180 days",
      purpose="decides how often preventive maintenance visits are generated for an asset",
      limit="Each asset type can have up to [[30|How many custom fields can one asset type have in the Tarnwick "
            "Asset Registry?]] custom fields, such as refrigerant type or lift load.",
      trash=("75 days", "deleted assets"), key=("G then A", "jump to the Asset Registry"),
      extra=[("Asset labels", "Tarnwick prints QR asset labels on [[Avery L7651|Which label sheet does "
              "Tarnwick use for printing QR asset labels?]] sheets. Scanning a label opens the asset with "
              "its last five visits."),
             ("Warranty reminders", "A reminder goes out [[50 days|How many days before a warranty ends "
              "does the Tarnwick Asset Registry send a reminder?]] before an asset's warranty ends, so you "
              "can offer the customer a service contract.")]),
    F(slug="forms", name="Forms and Checklists", ext="md", plan="Forge", things="form templates",
      intro="Forms and Checklists replace paper job sheets: safety checks, gas readings, commissioning sheets and "
            "customer surveys, filled in on site and attached to the work order.",
      menu="Settings > Forms > Library", setting="Submission lock", default="2 hours",
      purpose="sets how long a technician can still edit a form after submitting it",
      limit="A form can contain up to [[150|How many questions can a single Tarnwick form contain?]] questions, "
            "grouped into pages of any length.",
      trash=("33 days", "deleted form templates"), key=None,
      extra=[("Photo questions", "A photo question accepts up to [[8|How many photos can one photo question "
              "take in Tarnwick Forms and Checklists?]] photos, each compressed on the phone before upload."),
             ("Versions", "Tarnwick keeps the last [[12|How many previous versions of a form template does "
              "Tarnwick keep?]] versions of every template. Submitted forms always show the version that "
              "was used on site.")]),
    F(slug="dispatch-board", name="Dispatch Board", ext="md", plan="Sprout", things="board views",
      intro="The Dispatch Board is the dispatcher's timeline: one row per technician, one column per time slot, "
            "and a queue of visits waiting for someone to take them.",
      menu="Dispatch > Board > View options", setting="Slot length", default="20 minutes",
      purpose="sets the width of one column on the timeline",
      limit="A board view shows at most [[75|How many technicians can one Tarnwick Dispatch Board view show?]] "
            "technicians; larger teams use one saved view per region.",
      trash=("7 days", "deleted board views"), key=("Ctrl+Alt+D", "switch between day and week view"),
      extra=[("Colours", "Overdue visits are shown in [[teal|What colour does the Tarnwick Dispatch Board use "
              "for overdue visits?]], visits without a technician in grey and visits on hold with a hatched "
              "pattern.")]),
    F(slug="reporting", name="Reports and Dashboards", ext="html", plan="Forge", things="reports",
      intro="Reports and Dashboards show first-time fix rate, technician utilisation, stock turns and revenue per "
            "job, and e-mail scheduled reports to managers.",
      menu="Reports > Scheduled reports", setting="Delivery hour", default="06:30",
      purpose="sets the time of day at which scheduled reports are e-mailed",
      limit="Each user can schedule up to [[20|How many scheduled reports can one Tarnwick user have?]] reports.",
      trash=("25 days", "deleted dashboards"), key=("G then R", "open Reports"),
      extra=[("Data freshness", "Dashboards are rebuilt every [[11 minutes|How often are Tarnwick dashboards "
              "refreshed?]], so a job closed a moment ago may not show yet."),
             ("Exports", "Any report can be downloaded as [[CSV, XLSX or PDF|Which formats can a Tarnwick "
              "report be downloaded in?]]. Exports include the filters that were applied.")]),
]

# ------------------------------------------------------------------------------------------ plans
PLAN_ROWS = [("Users", "up to {}", "How many users can a Tarnwick {p} account have?"),
             ("File storage", "{}", "How much file storage comes with the Tarnwick {p} plan?"),
             ("Work orders per month", "{}", "How many work orders per month does the Tarnwick {p} plan include?"),
             ("Warehouses and vans", "{}", "How many warehouses and vans can a Tarnwick {p} account track?"),
             ("SMS credits per month", "{}", "How many SMS credits a month does the Tarnwick {p} plan include?"),
             ("Custom fields", "{}", "How many custom fields can a Tarnwick {p} account create?"),
             ("Audit log retention", "{}", "How long does the Tarnwick {p} plan keep audit log entries?")]
PLANS = [
    F(name="Sprout", ext="md", monthly="$19 per user per month", annual="$16 per user per month",
      seats="1", vals=["15", "25 GB", "600", "3", "100", "20", "30 days"],
      who="Sprout is for owner-operators and small crews who want to stop scheduling on a whiteboard.",
      support=("email", "2 business days"),
      extra="Sprout accounts can have at most [[2|How many dispatchers can a Tarnwick Sprout account have?]] "
            "dispatchers; every other user must be a technician."),
    F(name="Forge", ext="md", monthly="$43 per user per month", annual="$37 per user per month",
      seats="3", vals=["60", "150 GB", "5,000", "12", "800", "75", "180 days"],
      who="Forge is for growing service companies that run a warehouse and quote before they book.",
      support=("email and chat", "8 business hours"),
      extra="Forge includes one [[sandbox account|What extra test environment does the Tarnwick Forge plan "
            "include?]] for trying changes to forms and workflows before they reach technicians."),
    F(name="Depot", ext="md", monthly="$71 per user per month", annual="$62 per user per month",
      seats="10", vals=["400", "1.2 TB", "40,000", "45", "3,500", "250", "1 year"],
      who="Depot is for multi-branch companies with their own stores, purchasing team and customer portal.",
      support=("phone, chat and email", "2 hours"),
      extra="Depot customers get a [[quarterly business review|What regular meeting with a customer success "
            "manager comes with the Tarnwick Depot plan?]] with a customer success manager."),
    F(name="Summit", ext="html", monthly="custom pricing from $2,950 per month", annual=None,
      seats="50", vals=["unlimited", "10 TB", "unlimited", "200", "20,000", "1,000", "7 years"],
      who="Summit is for national service organisations with strict security, audit and uptime needs.",
      support=("a dedicated Slack channel", "30 minutes"),
      extra="Summit contracts include a dedicated [[change advisory call|What call do Tarnwick Summit customers "
            "get before each major release?]] before each major release."),
]

# ----------------------------------------------------------------------------------- integrations
INTEGRATIONS = [
    F(slug="quickbooks-online", name="QuickBooks Online", ext="md", plan="Forge",
      menu="Finance > Connected apps > QuickBooks", keep="60 days",
      intro="The QuickBooks Online integration keeps your books in step with the jobs you invoice in Tarnwick.",
      syncs="Tarnwick sends [[customers, invoices and payments|What does the Tarnwick QuickBooks Online "
            "integration sync?]] to QuickBooks and checks for changes every [[35 minutes|How often does Tarnwick "
            "sync with QuickBooks Online?]]. Each run moves at most 1,800 records; the rest wait for the next run.",
      extra=("Tax codes", "Every Tarnwick tax rate must be mapped to a QuickBooks tax code before the first "
             "sync. Unmapped rates fall back to [[Exempt|Which QuickBooks tax code does Tarnwick use for an "
             "unmapped tax rate?]], which is almost never what you want.")),
    F(slug="xero", name="Xero", ext="md", plan="Forge", menu="Finance > Connected apps > Xero", keep="45 days",
      intro="The Xero integration posts your Tarnwick invoices to Xero and brings payments back.",
      syncs="The integration syncs [[contacts, invoices, credit notes and payments|What does the Tarnwick Xero "
            "integration sync?]] in both directions every [[20 minutes|How often does Tarnwick sync with Xero?]]. "
            "Each run moves at most [[900|How many records can one Tarnwick sync run to Xero move?]] records.",
      extra=("Tracking categories", "Tarnwick fills the Xero tracking category [[Branch|Which Xero tracking "
             "category does Tarnwick fill in on synced invoices?]] with the branch that did the job, so "
             "profit and loss can be split by branch.")),
    F(slug="google-calendar", name="Google Calendar", ext="md", plan="Sprout",
      menu="Profile > Calendar sync", keep="14 days",
      intro="Google Calendar sync puts each technician's booked visits in their own Google calendar.",
      syncs="Sync is one-way: visits flow from Tarnwick to Google, never back. New and moved visits appear within "
            "[[3 minutes|How quickly do new Tarnwick visits appear in Google Calendar?]], and only visits up to "
            "[[120 days|How far ahead does Tarnwick sync visits to Google Calendar?]] ahead are synced.",
      extra=("Event titles", "Calendar events are titled with the [[job number and site name|What does "
             "Tarnwick use as the title of a Google Calendar event?]]; customer phone numbers are left out "
             "for privacy.")),
    F(slug="slack", name="Slack", ext="md", plan="Forge", menu="Settings > Integrations > Slack", keep="10 days",
      intro="The Slack integration posts dispatch events to Slack channels and lets staff look up jobs.",
      syncs="Notification rules send events such as a late technician or a Parts Hold to a channel. An account can "
            "have up to [[12|How many Slack notification rules can a Tarnwick account have?]] rules, each with its "
            "own channel and filter.",
      extra=("Slash command", "Type [[/tarnwick job|Which Slack slash command looks up a Tarnwick job?]] "
             "followed by a job number to see its status, technician and next visit without leaving Slack.")),
    F(slug="shopify", name="Shopify", ext="html", plan="Depot", menu="Inventory > Sales channels > Shopify",
      keep="30 days",
      intro="The Shopify integration lets you sell spare parts online from the same stock your vans use.",
      syncs="Tarnwick pushes [[stock levels and product variants|What does Tarnwick sync to Shopify?]] to Shopify "
            "every [[9 minutes|How often does Tarnwick push stock to Shopify?]]. One Tarnwick account can connect "
            "up to [[5|How many Shopify stores can one Tarnwick account connect?]] stores.",
      extra=("Safety stock", "To avoid overselling, Tarnwick holds back a buffer of [[2 units|How many units "
             "does Tarnwick hold back from Shopify as safety stock by default?]] per item by default; the "
             "buffer can be changed per warehouse.")),
    F(slug="salesforce", name="Salesforce", ext="md", plan="Summit", menu="Settings > Integrations > Salesforce",
      keep="90 days",
      intro="The Salesforce integration connects your sales and service teams to the work done in the field.",
      syncs="Tarnwick reads [[Accounts, Contacts and Cases|Which Salesforce objects does Tarnwick read?]] from "
            "Salesforce every [[45 minutes|How often does Tarnwick sync with Salesforce?]] and writes work order "
            "status back to the Case.",
      extra=("Record types", "Only Cases with the record type [[Field Visit|Which Salesforce Case record type "
             "turns into a Tarnwick work order?]] become work orders; other Cases are ignored.")),
    F(slug="microsoft-teams", name="Microsoft Teams", ext="md", plan="Forge",
      menu="Settings > Integrations > Microsoft Teams", keep="21 days",
      intro="The Microsoft Teams integration brings dispatch alerts and job look-ups into Teams.",
      syncs="Alerts are posted as adaptive cards to up to [[8|How many Teams channels can Tarnwick post alerts "
            "to?]] channels. The app is published in the Teams store as [[Tarnwick Dispatch|What is the Tarnwick "
            "app called in the Microsoft Teams store?]].",
      extra=("Approvals in Teams", "Purchase order approvals can be answered from the card itself. An approval "
             "card expires after [[48 hours|How long does a Tarnwick approval card in Microsoft Teams stay "
             "open?]]; after that it must be approved in Tarnwick.")),
]

# ------------------------------------------------------------------------------------ error codes
# (code, message, cause, fix, follow-up, question for the code or None)
ERRORS = {
    ("sign-in-errors.md", "Sign-in errors"): ("These errors appear on the sign-in page or right after "
        "signing in, in the web app and in the Tarnwick Crew app.", [
        ("TW-2104", "Reset link expired", "Password reset links are valid for [[30 minutes|How long is a "
         "Tarnwick password reset link valid?]] and can be used once.", "Request a new reset link",
         "Old links stop working as soon as a new one is sent.", "a password reset link is too old"),
        ("TW-2117", "Account locked", "The account was locked after [[7|How many failed sign-in attempts "
         "lock a Tarnwick account?]] failed sign-in attempts in a row.", "Ask an Owner to unlock it",
         "Owners unlock users from the People list.", None),
        ("TW-2130", "SSO assertion rejected", "The identity provider's clock differs from Tarnwick's by more "
         "than [[90 seconds|How much clock skew does Tarnwick allow in an SSO assertion?]].",
         "Sync the identity provider clock", "Most providers fix this by enabling NTP.",
         "a SAML assertion is refused"),
        ("TW-2142", "Security key not recognised", "The key was registered on a different Tarnwick account "
         "or was reset.", "Re-register the security key", "You need a backup code to get in first.", None),
        ("TW-2155", "Invitation already used", "Someone already accepted this invitation, often on another "
         "device.", "Send a fresh invitation", "Invitations are tied to one e-mail address.",
         "an invitation link has been accepted before")]),
    ("mobile-sync-errors.md", "Tarnwick Crew sync errors"): ("The Tarnwick Crew app works offline and "
        "syncs when it has a connection. These errors appear in the app's sync banner.", [
        ("TW-3108", "Offline cache full", "The app ran out of room for photos and forms.",
         "Upload pending photos on Wi-Fi", "Pending items are listed under Me > Sync queue.",
         "the offline cache on a phone is full"),
        ("TW-3121", "Visit changed on the server", "A dispatcher edited the visit while the technician was "
         "offline.", "Keep the dispatcher's version", "Your notes are kept as a comment on the visit.", None),
        ("TW-3136", "Clock is wrong", "The phone's clock is more than [[4 minutes|How far off can a phone's "
         "clock be before Tarnwick Crew refuses to sync?]] off.", "Turn on automatic date and time",
         "Timesheets from a phone with a wrong clock cannot be trusted.", None),
        ("TW-3149", "App version too old", "The app is older than the oldest supported release.",
         "Update Tarnwick Crew", "Old versions are blocked to protect data.",
         "the Tarnwick Crew app is too old to sync"),
        ("TW-3163", "Signature upload failed", "The signature image was cut off during upload.",
         "Ask the customer to sign again", "The visit stays open until a signature arrives.", None)]),
    ("inventory-errors.md", "Inventory errors"): ("These errors come from stock moves, transfers and "
        "counts in the web app, the Crew app and the API.", [
        ("TW-4203", "Bin capacity exceeded", "The move would put more units in a bin than its set capacity.",
         "Use an overflow bin", "Bin capacities are optional; leave empty for no limit.",
         "a stock move would overfill a bin"),
        ("TW-4218", "Negative stock blocked", "The issue would take stock below zero and the warehouse "
         "forbids negative stock.", "Record the missing receipt first", "Most cases are deliveries that "
         "were never received.", None),
        ("TW-4226", "Barcode not found", "No stock item carries the scanned barcode.", "Rebuild the barcode "
         "index", "Rebuilding takes about a minute for 10,000 items.", "a scanned barcode matches no item"),
        ("TW-4239", "Transfer already received", "The transfer was received on another device.",
         "Refresh the transfer list", "No stock was moved twice.", None),
        ("TW-4251", "Count session locked", "Another user has the count session open; sessions unlock after "
         "[[15 minutes|After how long does a locked Tarnwick stock count session unlock itself?]] of "
         "inactivity.", "Close the other session", "Counts are saved as you go.", None)]),
    ("invoicing-and-payment-errors.html", "Invoicing and payment errors"): ("These errors appear when "
        "invoices are issued, sent or paid, and when card payments are taken on site.", [
        ("TW-5302", "Invoice number already used", "Another invoice in the same series has this number.",
         "Reset the number series", "Series are set per branch.", "an invoice number is taken"),
        ("TW-5317", "Tax rate missing", "A line has no tax rate and the account requires one.",
         "Assign a tax rate", "Zero-rated lines need the 0% rate, not an empty one.", None),
        ("TW-5324", "Card reader not paired", "The Bluetooth card reader lost its pairing.",
         "Pair the reader again in Crew", "Readers pair with one phone at a time.", None),
        ("TW-5338", "Payment link expired", "Customer payment links are valid for [[30 days|How long is a "
         "Tarnwick customer payment link valid?]].", "Resend the invoice", "The new e-mail carries a new link.",
         "a customer opens a payment link that is too old"),
        ("TW-5346", "Credit note exceeds invoice", "The credit note is larger than what is left on the invoice.",
         "Lower the credit note amount", "Refund any overpayment separately.", None)]),
    ("import-errors.txt", "Import errors"): ("These errors come from CSV and XLSX imports of customers, "
        "sites, stock items and work orders.", [
        ("TW-6401", "Unknown column", "A header in the file matches no Tarnwick field.",
         "Map the column or remove it", "Mappings are saved for the next import.", None),
        ("TW-6415", "File not UTF-8", "The file uses another text encoding.", "Save the file as UTF-8",
         "Excel calls this CSV UTF-8 (Comma delimited).", "an import file has the wrong text encoding"),
        ("TW-6427", "Duplicate external ID", "Two rows share the same external ID.", "Make the external IDs "
         "unique", "External IDs are how re-imports update records.", None),
        ("TW-6432", "Too many rows", "The file has more rows than one import allows.",
         "Split the file into parts", "Each part can be imported right after the previous one.",
         "an import file is too long"),
        ("TW-6448", "Date not understood", "A date matches none of the accepted formats; Tarnwick accepts "
         "[[YYYY-MM-DD and DD/MM/YYYY|Which date formats do Tarnwick imports accept?]].",
         "Reformat the date column", "Times are read in the account time zone.", None)]),
    ("integration-errors.md", "Integration errors"): ("These errors appear on the Connected apps page and "
        "in the sync history of each integration.", [
        ("TW-7506", "Token revoked", "The other system revoked Tarnwick's access.", "Reconnect the integration",
         "Mappings survive a reconnect.", "another system has revoked Tarnwick's access"),
        ("TW-7513", "Rate limited by partner", "The other system throttled Tarnwick.", "Wait for the next run",
         "Tarnwick backs off for [[16 minutes|How long does Tarnwick back off after a partner system rate limits "
         "it?]] before retrying.", None),
        ("TW-7529", "Mapping incomplete", "A required field has no mapping.", "Complete the field mapping",
         "The page highlights the missing field.", None),
        ("TW-7534", "Record deleted in partner", "The record was deleted in the other system.",
         "Unlink the record in Tarnwick", "Unlinking keeps the Tarnwick record.",
         "a synced record no longer exists in the other system"),
        ("TW-7548", "Webhook signature mismatch", "An incoming webhook failed its signature check.",
         "Rotate the shared secret", "Update the secret on both sides at once.", None)]),
}

# ------------------------------------------------------------------------------------ release notes
# path: (intro, [(version, date, [note or (note, question answered by the version)])])
RELEASES = {
    "changelog/v1.txt": ("Tarnwick 1.x was the first generation of the product: scheduling, work orders and "
        "timesheets for small maintenance crews. These notes are kept for reference; 1.x is no longer "
        "supported.", [
        ("1.0.0", "2019-04-09", ["First public release: work orders, Dispatch Board and Timesheets.",
                                 ("Tarnwick Crew for Android.", "Which Tarnwick release first shipped the Tarnwick Crew app for Android?")]),
        ("1.1.0", "2019-06-18", [("Xero integration, the first accounting integration.", "In which Tarnwick version did the Xero integration arrive?"),
                                 "Fixed time zones on exported timesheets."]),
        ("1.2.0", "2019-09-03", [("Tarnwick Crew for iPhone.", "Which Tarnwick release brought the Tarnwick Crew app to iPhone?"),
                                 "Faster loading of the Dispatch Board for large teams."]),
        ("1.4.0", "2020-01-21", [("Quotes, with PDF export.", "Which Tarnwick version introduced Quotes?"),
                                 ("API v1 for work orders and customers.", "In which Tarnwick release did API v1 first appear?")]),
        ("1.6.2", "2020-05-12", [("CSV import of work orders.", "Which Tarnwick release added CSV import of work orders?"),
                                 "Fixed a crash when a technician had no phone number."])]),
    "changelog/v2.md": ("Tarnwick 2.x added parts: stock, warehouses, vans and purchasing. It is the release "
        "line where Tarnwick grew from a scheduler into a field-service and inventory platform.", [
        ("2.0.0", "2020-09-29", [("Stock and Inventory module with warehouses, vans and bins.", "Which Tarnwick version introduced the Stock and Inventory module?"),
                                 "Work orders can reserve parts."]),
        ("2.1.0", "2020-12-08", [("Purchase Orders with supplier e-mails.", "In which Tarnwick release did Purchase Orders arrive?"),
                                 "Fixed rounding of unit costs with four decimals."]),
        ("2.3.0", "2021-03-16", [("Barcode scanning in Tarnwick Crew.", "Which Tarnwick release added barcode scanning to the Crew app?"),
                                 ("QuickBooks Online integration.", "In which Tarnwick version did the QuickBooks Online integration ship?")]),
        ("2.5.1", "2021-06-22", [("Security keys as a second factor.", "Which Tarnwick release added security keys for two-factor authentication?"),
                                 "Fixed duplicate reminders for overdue invoices."])]),
    "changelog/v3.md": ("Tarnwick 3.x was about the customer: routes that respect time windows, a portal "
        "where customers follow their visit, and an asset history they can trust.", [
        ("3.0.0", "2021-10-05", [("Route Planner with time windows and skills.", "Which Tarnwick version introduced the Route Planner?"),
                                 ("API v2 with cursor pagination.", "In which Tarnwick release did API v2 arrive?")]),
        ("3.2.0", "2022-02-15", [("Customer Portal with online booking.", "Which Tarnwick release launched the Customer Portal?"),
                                 "Fixed map pins for sites without a postcode."]),
        ("3.4.1", "2022-05-24", [("Shopify integration for selling spare parts.", "In which Tarnwick version did the Shopify integration appear?"),
                                 "Fixed stock reservations released twice."]),
        ("3.7.0", "2022-09-13", [("Asset Registry with QR labels.", "Which Tarnwick release added the Asset Registry?"),
                                 "Google Calendar sync of visits."])]),
    "changelog/v4.html": ("Tarnwick 4.x rebuilt the platform for larger companies: a new API, single "
        "sign-on, more data regions and integrations with the tools office teams already use. Customers "
        "on 3.x were moved over in waves, branch by branch, and nobody had to re-enter data.", [
        ("4.0.0", "2022-11-29", [("API v3 and the redesigned Dispatch Board.", "Which Tarnwick version introduced API v3?"),
                                 "API v1 was switched off."]),
        ("4.2.0", "2023-03-14", [("Slack integration.", "In which Tarnwick release did the Slack integration arrive?"),
                                 ("Conditional questions in Forms and Checklists.", "Which Tarnwick release added conditional questions to forms?")]),
        ("4.5.0", "2023-07-25", [("Salesforce integration.", "Which Tarnwick version shipped the Salesforce integration?"),
                                 ("Australia data region.", "In which Tarnwick release did the Australia data region open?")]),
        ("4.8.3", "2024-01-16", [("Microsoft Teams integration.", "Which Tarnwick release added the Microsoft Teams integration?"),
                                 "Fixed SAML sign-in for users with plus signs in their e-mail address."])]),
    "changelog/v5.md": ("Tarnwick 5.x is the current release line. It focuses on reporting, compliance "
        "and automation. API v2 is deprecated in this line; see the API overview for its shutdown date.", [
        ("5.0.0", "2024-04-30", [("Reports and Dashboards rebuilt on a new engine.", "Which Tarnwick version rebuilt Reports and Dashboards on a new engine?"),
                                 ("Factur-X e-invoices.", "In which Tarnwick release did Factur-X e-invoices arrive?")]),
        ("5.1.0", "2024-07-09", [("SCIM user provisioning.", "Which Tarnwick release added SCIM user provisioning?"),
                                 "Fixed slow search in customers with many sites."]),
        ("5.3.0", "2024-11-19", [("Canada data region.", "In which Tarnwick version did the Canada data region open?"),
                                 "Bulk approval of timesheets."]),
        ("5.4.2", "2025-02-25", [("Live traffic in the Route Planner.", "Which Tarnwick release added live traffic to the Route Planner?"),
                                 "Fixed PDF quotes cutting off long descriptions."])]),
}

# --------------------------------------------------------------------------------- one-off pages
# One-off pages (API, admin, getting started, FAQ...) are written in page_sources.txt, in the same
# source language with [[answer|question]] markers; lines starting with "#" there are comments.
PAGES = "\n".join(ln for ln in (HERE / "page_sources.txt").read_text(encoding="utf-8").split("\n")
                  if not ln.startswith("# "))


# ------------------------------------------------------------------------------------- templates
def pick(*options: str) -> str:
    return rng.choice(options)


def feature_source(f: dict) -> str:
    n, t = f["name"], f["things"]
    parts = [f["intro"] + " " + pick(
        f"{n} is part of the [[{f['plan']}|Which is the cheapest Tarnwick plan that includes the {n} module?]] plan "
        "and every plan above it.",
        f"{n} comes with the [[{f['plan']}|On which Tarnwick plan does the {n} module first become "
        "available?]] plan "
        "and all higher plans.")]
    parts.append("## Where to find it\n\n" + pick("Open", "Go to", "Settings live under") +
                 f" **[[{f['menu']}|Where are the settings of the {n} module in Tarnwick?|Where do you "
                 f"configure the {n} module in Tarnwick?]]**. Only Owners and Administrators can change them; other roles see them "
                 "read-only.")
    parts.append("## The key setting\n\n" + pick(
        f"The setting most teams change first is **[[{f['setting']}|In Tarnwick {n}, which setting "
        f"{f['purpose']}?]]**, which {f['purpose']}.",
        f"**[[{f['setting']}|What is the name of the Tarnwick {n} setting that {f['purpose']}?]]** {f['purpose']}.")
        + " " + pick("New accounts start with", "Out of the box it is set to", "The default value is") +
        f" [[{f['default']}|By default, what is {f['setting']} set to in Tarnwick {n}?|What is "
        f"{f['setting']} set to by default in Tarnwick {n}?]]. Changes apply to new {t} only; existing {t} keep the value "
        "they were created with.")
    parts.append("## Limits\n\n" + f["limit"])
    days, noun = f["trash"]
    parts.append("## Deleting and restoring\n\n" + pick(
        f"{noun.capitalize()} stay in the trash for [[{days}|How long does Tarnwick keep {noun} in the "
        f"trash?]]. Anyone who could edit them can restore them until then.",
        f"Tarnwick keeps {noun} in the trash for [[{days}|How long do {noun} stay in the Tarnwick trash "
        "before they are purged?]], and an Administrator can restore them during that time.") +
        " After that they are purged for good and cannot be recovered, not even by support.")
    if f["key"]:
        key, action = f["key"]
        parts.append("## Keyboard shortcut\n\n" + f"Press `[[{key}|Which keyboard shortcut is used to "
                     f"{action} in Tarnwick?]]` to {action}. Shortcuts work anywhere in the web app "
                     "except inside text fields.")
    parts += [f"## {head}\n\n{text}" for head, text in f["extra"]]
    return "\n\n".join(parts)


def plan_source(p: dict) -> str:
    name = p["name"]
    rows = "\n".join(f"| {label} | " + ("{}" if val == "unlimited" else fmt).format(
                     f"[[{val}|{q.format(p=name)}]]") + " |" for (label, fmt, q), val in zip(PLAN_ROWS, p["vals"]))
    channel, response = p["support"]
    return "\n\n".join([
        p["who"] + " This page lists what the plan includes; prices are on the plans page.",
        f"## What {name} includes\n\n| Allowance | {name} |\n|---|---|\n{rows}",
        "Allowances reset on the first day of each billing month. Unused SMS credits do not roll over, "
        "and storage counts every photo, form and document attached to any record.",
        f"## Support\n\n{name} customers reach support through [[{channel}|How can Tarnwick {name} customers "
        f"contact support?]]. The first-response target is [[{response}|What is the first-response target "
        f"for support on the Tarnwick {name} plan?]] for urgent tickets.",
        f"## Good to know\n\n{p['extra']}",
        f"## Moving to another plan\n\nYou can leave {name} at any time. An upgrade starts immediately and "
        "is charged pro rata; a downgrade starts at the next renewal, and data above the lower plan's "
        "limits stays readable but cannot grow."])


def plans_overview_source() -> str:
    bullets = []
    for p in PLANS:
        n = p["name"]
        if p["annual"]:
            bullets.append(f"- {n} costs [[{p['monthly']}|How much does the Tarnwick {n} plan cost per user on "
                           f"monthly billing?]] on monthly billing, or [[{p['annual']}|What does the Tarnwick "
                           f"{n} plan cost per user when billed annually?]] when billed annually.")
        else:
            bullets.append(f"- {n} has [[{p['monthly']}|What does the Tarnwick {n} plan cost?]] and is always "
                           "billed annually.")
    seats = "\n".join(f"| {p['name']} | " + (f"[[{p['seats']}|What is the minimum number of seats on the "
                                             f"Tarnwick {p['name']} plan?]]" if p["seats"] != "1" else "1") + " |"
                      for p in PLANS)
    return "\n\n".join([
        "Tarnwick has four plans. Every plan includes the web app, the Tarnwick Crew app for technicians and "
        "unlimited customers. Prices are per user, where a user is anyone who signs in, technicians included. "
        "Portal users are free.",
        "## Prices", "\n".join(bullets),
        "## Minimum seats", f"| Plan | Minimum seats |\n|---|---|\n{seats}",
        "## Choosing a plan\n\nStart with the plan that has the modules you need today; each feature page "
        "says which plan the module needs. You can move up at any time and the difference is charged pro "
        "rata. Moving down takes effect at the next renewal. Each plan has its own page with its limits and "
        "support terms."])


def integration_source(g: dict) -> str:
    n = g["name"]
    head, text = g["extra"]
    return "\n\n".join([
        g["intro"] + " " + pick(f"It is available on the [[{g['plan']}|Which Tarnwick plan do you need for "
                                f"the {n} integration?]] plan and higher.",
                                f"You need the [[{g['plan']}|What is the lowest Tarnwick plan with the {n} "
                                "integration?]] plan or a higher one to use it."),
        f"## Connecting {n}\n\n" + pick("Go to", "Open") + f" **[[{g['menu']}|Where do you connect {n} to "
        f"Tarnwick?]]** and choose **Connect**. Sign in to {n} with an administrator account and approve "
        "the access Tarnwick asks for. The first sync starts right away.",
        f"## What syncs\n\n{g['syncs']}",
        f"## {head}\n\n{text}",
        "## Sync history\n\nEvery run is listed on the integration's **Sync history** tab with the records "
        "created, updated and skipped. Open a run to see each record and the error code of any record "
        "that failed; the integration errors page explains every code and its fix.",
        f"## Disconnecting\n\nDisconnecting stops all syncing at once. Records already synced stay where "
        f"they are in both systems. Tarnwick keeps your {n} connection settings "
        f"(mappings, channels and filters) for [[{g['keep']}|How long does Tarnwick keep your {n} connection "
        "settings after you disconnect?]], so reconnecting within that time needs no setup."])


def errors_source(intro: str, errors: list) -> str:
    parts = [intro + " Each entry gives the cause and the fix. If the fix does not help, open a ticket "
             "and quote the code."]
    label = pick("**Fix:**", "**How to fix it:**", "**Solution:**")
    for code, message, cause, fix, more, when in errors:
        heading = f"[[{code}|Which error code does Tarnwick show when {when}?]]" if when else code
        parts.append(f"## {heading}: {message}\n\n{cause}\n\n{label}" +
                     f" [[{fix}|" + pick(f"How do you fix Tarnwick error {code}?",
                                         f"What is the fix for Tarnwick error {code}?",
                                         f"What should you do about error {code} in Tarnwick?") +
                     f"]]. {more}")
    return "\n\n".join(parts)


def release_page(intro: str, releases: list) -> tuple[str, list]:
    parts, qa = [intro], []
    dated = set(rng.sample(range(len(releases)), 2))
    for i, (version, date, notes) in enumerate(releases):
        items = [n if isinstance(n, str) else n[0] for n in notes]
        parts.append(f"## {version} ({date})\n\n" + "\n".join(f"- {it}" for it in items))
        qa += [(n[1], version) for n in notes if not isinstance(n, str)]
        if i in dated:
            qa.append((pick(f"When was Tarnwick {version} released?",
                            f"On what date did Tarnwick {version} come out?",
                            f"What is the release date of Tarnwick version {version}?"), date))
    parts.append("## About version numbers\n\nTarnwick uses semantic versioning: the major number changes "
                 "when the API or the data model breaks compatibility, the minor number for new features and "
                 "the patch number for fixes. Only releases with visible changes are listed; security fixes "
                 "are announced on the status page instead.")
    parts.append("## Upgrade notes\n\nTarnwick updates itself; there is nothing to install on the web. "
                 "Technicians get new Tarnwick Crew versions from their app store, and older app versions "
                 "keep working for at least one minor release.")
    return "\n\n".join(parts), qa


def all_sources() -> list[tuple[str, str, str, list]]:
    """Every page as (path, title, source, extra questions)."""
    pages = [(f"features/{f['slug']}.{f['ext']}", f["name"], feature_source(f), []) for f in FEATURES]
    pages += [(f"pricing/{p['name'].lower()}.{p['ext']}", f"The {p['name']} plan", plan_source(p), [])
              for p in PLANS]
    pages.append(("pricing/plans.md", "Plans and prices", plans_overview_source(), []))
    pages += [(f"integrations/{g['slug']}.{g['ext']}", f"{g['name']} integration", integration_source(g), [])
              for g in INTEGRATIONS]
    pages += [(f"troubleshooting/{path}", title, errors_source(intro, errs), [])
              for (path, title), (intro, errs) in ERRORS.items()]
    for path, (intro, releases) in RELEASES.items():
        major = path.split("/v")[1].split(".")[0]
        pages.append((path, f"Release notes: Tarnwick {major}.x", *release_page(intro, releases)))
    for chunk in PAGES.split("\n=== ")[1:]:
        head, source = chunk.split("\n", 1)
        path, title = (s.strip() for s in head.split("|"))
        pages.append((path, title, source, []))
    return pages


# ------------------------------------------------------------------------------------- rendering
MARK = re.compile(r"\[\[(.+?)\]\]", re.S)


def resolve(source: str, qa: list) -> str:
    """Replace each [[answer|question|...]] by its answer and record (question, answer)."""
    def one(m: re.Match) -> str:
        answer, *questions = [" ".join(s.split()) for s in m.group(1).split("|")]
        qa.append((rng.choice(questions), answer))
        return answer
    return MARK.sub(one, source)


def parse(source: str) -> list[tuple]:
    """Page source -> blocks ("h2", text) ("p", text) ("ul"|"ol", items) ("table", rows)."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", source.strip()):
        lines = [ln.rstrip() for ln in chunk.split("\n")]
        if lines[0].startswith("## "):
            blocks.append(("h2", lines[0][3:]))
        elif lines[0].startswith("|"):
            rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines
                    if not re.fullmatch(r"\|[-|]+\|", ln)]
            blocks.append(("table", rows))
        elif re.match(r"(- |\d+\. )", lines[0]):
            items: list[str] = []
            for ln in lines:
                m = re.match(r"(- |\d+\. )(.*)", ln)
                if m:
                    items.append(m.group(2))
                else:  # a continuation line of the previous item
                    items[-1] += " " + ln.strip()
            blocks.append(("ul" if lines[0].startswith("- ") else "ol", items))
        else:
            blocks.append(("p", " ".join(ln.strip() for ln in lines)))
    return blocks


def render_md(title: str, blocks: list) -> str:
    out = [f"# {title}"]
    for kind, body in blocks:
        if kind == "h2":
            out.append(f"## {body}")
        elif kind == "p":
            out.append(body)
        elif kind in ("ul", "ol"):
            out.append("\n".join(("- " if kind == "ul" else f"{i}. ") + it for i, it in enumerate(body, 1)))
        else:
            head, *rows = body
            out.append("\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                                 ["| " + " | ".join(r) + " |" for r in rows]))
    return "\n\n".join(out) + "\n"


def render_txt(title: str, blocks: list) -> str:
    plain = lambda s: re.sub(r"\*\*(.+?)\*\*|`(.+?)`", lambda m: m.group(1) or m.group(2), s)  # noqa: E731
    out = [f"{title.upper()}\n{'=' * len(title)}"]
    for kind, body in blocks:
        if kind == "h2":
            out.append(f"{body}\n{'-' * len(body)}")
        elif kind == "p":
            out.append(plain(body))
        elif kind in ("ul", "ol"):
            out.append("\n".join(("  * " if kind == "ul" else f"  {i}. ") + plain(it) for i, it in enumerate(body, 1)))
        else:
            rows = [[plain(c) for c in r] for r in body]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            out.append("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
    return "\n\n".join(out) + "\n"


HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} | Tarnwick Docs</title>
<script>window.tarnwickDocs = {{search: true, feedback: "thumbs", analyticsId: "TD-88213"}};
document.addEventListener("DOMContentLoaded", function () {{ document.body.classList.add("js"); }});</script>
</head>
<body>
<nav class="docs-nav">
  <a href="/docs/">Tarnwick Docs</a> | <a href="/docs/getting-started/quickstart">Get started</a> |
  <a href="/docs/features/">Features</a> | <a href="/docs/api/overview">API</a> |
  <a href="/docs/pricing/plans">Pricing</a> | <a href="https://status.example.invalid">Status</a>
</nav>
<main>
"""
HTML_FOOT = """</main>
<footer class="docs-footer">
  <p>Copyright 2025 Tarnwick Labs. All rights reserved.</p>
  <p>Was this page helpful? Send feedback from the help menu. Terms of service | Privacy notice | Cookie settings</p>
</footer>
</body>
</html>
"""


def render_html(title: str, blocks: list) -> str:
    def inline(s: str) -> str:
        s = s.replace("&", "&amp;").replace("<", "&lt;")
        return re.sub(r"`(.+?)`", r"<code>\1</code>", re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s))
    out = [HTML_HEAD.format(title=inline(title)), f"<h1>{inline(title)}</h1>"]
    for kind, body in blocks:
        if kind == "h2":
            out.append(f"<h2>{inline(body)}</h2>")
        elif kind == "p":
            out.append(f"<p>{inline(body)}</p>")
        elif kind in ("ul", "ol"):
            out.append(f"<{kind}>\n" + "\n".join(f"  <li>{inline(it)}</li>" for it in body) + f"\n</{kind}>")
        else:
            head, *rows = body
            out.append("<table>\n  <thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) +
                       "</tr></thead>\n  <tbody>\n" + "\n".join(
                           "    <tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows) +
                       "\n  </tbody>\n</table>")
    return "\n".join(out) + "\n" + HTML_FOOT


def visible_text(path: str, text: str) -> str:
    """What a reader sees: HTML without head, nav, footer and tags; Markdown and text as they are."""
    if not path.endswith(".html"):
        return text
    for tag in ("head", "nav", "footer"):
        text = re.sub(rf"<{tag}\b.*?</{tag}>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


# ---------------------------------------------------------------------------------- build + check
def question_type(question: str, answer: str) -> str:
    if "$" in answer:
        return "price"
    if re.fullmatch(r"\d+\.\d+\.\d+|\d{4}-\d\d-\d\d", answer):
        return "version or release date"
    if re.search(r"error (code|TW-)|error TW-", question) or question.startswith("Which error code"):
        return "error code or fix"
    if " > " in answer:
        return "menu path"
    if "default" in question:
        return "default value"
    if "setting" in question or "keyboard shortcut" in question:
        return "setting name or shortcut"
    if "format" in question or "/v3/" in answer or question.startswith(("Which field", "Which header",
                                                                       "Which query", "Which response")):
        return "formats, endpoints and fields"
    if answer[0].isdigit():
        return "number, limit or duration"
    return "name or short phrase"


def build() -> tuple[list, list]:
    pages, records = [], []
    for path, title, source, extra in all_sources():
        qa: list = []
        blocks = parse(resolve(source, qa))
        ext = path.rsplit(".", 1)[1]
        text = {"md": render_md, "txt": render_txt, "html": render_html}[ext](title, blocks)
        pages.append((path, text))
        records += [(f"docs/{path}", q, a) for q, a in qa + extra]
    return pages, records


def check(pages: list, records: list) -> list[str]:
    problems, texts, seen = [], {f"docs/{p}": t for p, t in pages}, set()
    for path, text in texts.items():
        words = len(visible_text(path, text).split())
        if not 150 <= words <= 900:
            problems.append(f"{path}: {words} words (want 150-900)")
    for src, q, a in records:
        whole = re.compile(r"(?<!\w)" + re.escape(a) + r"(?!\w)")
        if not whole.search(texts[src]) or not whole.search(visible_text(src, texts[src])):
            problems.append(f"{src}: answer {a!r} not found verbatim")
        if q in seen or not q.endswith("?") or "Tarnwick" not in q:
            problems.append(f"{src}: duplicate or malformed question {q!r}")
        if not re.sub(r"\b(a|an|the)\b|[^\w]", "", a.lower()):  # exact_match_squad would see ""
            problems.append(f"{src}: answer {a!r} is empty after SQuAD normalisation")
        if len(a.split()) > 6:
            problems.append(f"{src}: answer {a!r} longer than 6 words")
        seen.add(q)
    per_page = {p: sum(r[0] == p for r in records) for p in texts}
    problems += [f"{p}: only {n} questions" for p, n in per_page.items() if n < 3]
    exts = [p.rsplit(".", 1)[1] for p in texts]
    if len(texts) < 45 or exts.count("html") < 6 or exts.count("txt") < 4 or len(records) < 320:
        problems.append(f"too few: {len(texts)} pages, {exts.count('html')} html, {exts.count('txt')} txt, "
                        f"{len(records)} questions")
    return problems


def main() -> None:
    pages, records = build()
    problems = check(pages, records)
    if problems:
        raise SystemExit("make_docs.py: checks failed\n  " + "\n  ".join(problems))
    shutil.rmtree(HERE / "docs", ignore_errors=True)
    for path, text in pages:
        (HERE / "docs" / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / "docs" / path).write_text(text, encoding="utf-8")
    with open(HERE / "qa.jsonl", "w", encoding="utf-8") as out:
        for i, (src, q, a) in enumerate(records, 1):
            out.write(json.dumps({"messages": [{"role": "user", "content": q},
                                               {"role": "assistant", "content": a}],
                                  "source": src, "id": f"q{i:04d}"}, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for _, q, a in records:
        kinds[question_type(q, a)] = kinds.get(question_type(q, a), 0) + 1
    exts = [p.rsplit(".", 1)[1] for p, _ in pages]
    print(f"{len(pages)} pages ({', '.join(f'{exts.count(e)} {e}' for e in ('md', 'html', 'txt'))}), "
          f"{len(records)} questions")
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {n:4d}  {kind}")


if __name__ == "__main__":
    main()
